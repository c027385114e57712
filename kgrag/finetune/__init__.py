"""Supervised LoRA fine-tuning of the generator on (text, triples) pairs.

The training prompt is built by :mod:`kgrag.extract.prompts`, the same code the extractor uses, and
the target is the JSON the extraction model constrains decoding to. The trained adapter is saved as
a PEFT adapter and converted to a llama.cpp GGUF LoRA, so ``kgrag build`` and ``kgrag eval`` run it
through the same constrained llama.cpp backend as the bundled models (``--model DIR``).
"""
