# the generator is deterministic: from the repository root, this reruns model 2007 alone
.venv/bin/python bench/fuzz.py --models 1 --seed 2007 --targets vulkan --out /tmp/fuzz
