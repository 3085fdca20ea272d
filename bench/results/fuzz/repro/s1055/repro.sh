# the generator is deterministic: from the repository root, this reruns model 1055 alone
.venv/bin/python bench/fuzz.py --models 1 --seed 1055 --targets vulkan --out /tmp/fuzz
