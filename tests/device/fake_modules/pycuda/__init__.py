"""A fake ``pycuda`` for fresh test processes: the subset of pycuda's documented API (documen.tician.de/pycuda,
"Device Interface") that edgeexport uses, over the fake GPU's memory (_edgeexport_fake_gpu)."""
