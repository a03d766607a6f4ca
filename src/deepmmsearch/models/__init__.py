"""Model building and loading: the tiny local Qwen2.5-VL, the processor without torchvision,
``load_model_and_processor`` for hub ids, local directories and LoRA adapter directories."""
