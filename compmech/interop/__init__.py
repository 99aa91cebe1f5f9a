"""Bridges to other libraries: TransformerLens both ways, Hugging Face and PyTorch models, MLflow tracking.

`compmech.interop.models.analyze_model` runs a model object (a TransformerLens ``HookedTransformer``, a Hugging Face
causal LM, any callable tokens -> activations) on a process's evaluation set and analyses it like a run;
`compmech.interop.transformer_lens` exports compmech's transformer as a ``HookedTransformer``;
`compmech.interop.tracking` logs a run to MLflow. The libraries are optional (the extras ``[interop]`` and
``[tracking]``) and imported only inside the functions that use them.
"""
