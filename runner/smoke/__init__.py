"""`runner smoke`: a few CPU training steps on a tiny model with the base model's tokenizer."""
