"""The kernel-ABI room: what the C microkernels (kernels/) and the compiler agree on. The packers (header slots,
magic numbers, table layouts: *_abi.py), the dispatch text that calls a kernel from IREE (microkernel_dispatch),
and the built objects (kernels, build_kernels). The passes and the runtime import it; it imports neither."""
