"""The runner interface every backend implements."""


class Runner(object):
    """``with runner: outputs = runner.infer({"input": x})``; outputs are numpy arrays keyed by tensor name."""

    name = "runner"
    # the precision the backend computes in, where it is known (a TensorRT engine's comes from its build record)
    precision = None

    def __init__(self):
        self.is_active = False

    def activate(self):
        if not self.is_active:
            self._activate()
            self.is_active = True
        return self

    def deactivate(self):
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def infer(self, feed):
        if not self.is_active:
            raise RuntimeError("{}: call activate() (or use it in a with-block) before infer()".format(self.name))
        return self._infer(feed)

    def __enter__(self):
        return self.activate()

    def __exit__(self, *exc):
        self.deactivate()

    def _activate(self):
        raise NotImplementedError

    def _infer(self, feed):
        raise NotImplementedError

    def _deactivate(self):
        pass
