"""mpo_train: Mixed Preference Optimization for processor-based vision-language models, on accelerate."""
