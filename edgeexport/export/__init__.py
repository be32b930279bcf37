"""The host's export stage, one module per product (host-side: torch, onnx, onnxruntime):

``fold`` (normalisation into the first conv) -> ``deploy`` (the deploy model) -> ``onnx_graph`` (OnnxGraph)
-> ``parity`` (ExportParity) -> ``bundle`` (the folder); ``pipeline.export_bundle`` runs them in a line, ``cli`` is
``python -m edgeexport.export`` / ``export.py``. Importing this package imports none of them.
"""
