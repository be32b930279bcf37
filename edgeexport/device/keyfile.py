"""Read DeepStream config files with GLib's own GKeyFile parser (what nvinfer and deepstream-app use), through
ctypes on libglib-2.0. Where libglib is absent, ``available()`` is False and callers say so.

Device-side (Python 3.6).
"""
import ctypes
import ctypes.util

from .errors import ConfigError

_glib = None


class _GError(ctypes.Structure):
    _fields_ = [("domain", ctypes.c_uint32), ("code", ctypes.c_int), ("message", ctypes.c_char_p)]


def _lib():
    global _glib
    if _glib is None:
        name = ctypes.util.find_library("glib-2.0") or "libglib-2.0.so.0"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            _glib = False
            return None
        vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)
        err = ctypes.POINTER(ctypes.POINTER(_GError))
        lib.g_key_file_new.restype = vp
        lib.g_key_file_free.argtypes = [vp]
        lib.g_key_file_load_from_file.argtypes = [vp, cp, ctypes.c_int, err]
        lib.g_key_file_load_from_file.restype = ctypes.c_int
        lib.g_key_file_load_from_data.argtypes = [vp, cp, ctypes.c_size_t, ctypes.c_int, err]
        lib.g_key_file_load_from_data.restype = ctypes.c_int
        lib.g_key_file_get_groups.argtypes = [vp, sz]
        lib.g_key_file_get_groups.restype = ctypes.POINTER(cp)
        lib.g_key_file_get_keys.argtypes = [vp, cp, sz, err]
        lib.g_key_file_get_keys.restype = ctypes.POINTER(cp)
        lib.g_key_file_get_value.argtypes = [vp, cp, cp, err]
        lib.g_key_file_get_value.restype = vp
        lib.g_key_file_get_string.argtypes = [vp, cp, cp, err]
        lib.g_key_file_get_string.restype = vp
        lib.g_key_file_get_integer.argtypes = [vp, cp, cp, err]
        lib.g_key_file_get_integer.restype = ctypes.c_int
        lib.g_key_file_get_double.argtypes = [vp, cp, cp, err]
        lib.g_key_file_get_double.restype = ctypes.c_double
        lib.g_key_file_get_boolean.argtypes = [vp, cp, cp, err]
        lib.g_key_file_get_boolean.restype = ctypes.c_int
        lib.g_key_file_get_double_list.argtypes = [vp, cp, cp, sz, err]
        lib.g_key_file_get_double_list.restype = ctypes.POINTER(ctypes.c_double)
        lib.g_key_file_get_string_list.argtypes = [vp, cp, cp, sz, err]
        lib.g_key_file_get_string_list.restype = ctypes.POINTER(cp)
        lib.g_strfreev.argtypes = [ctypes.POINTER(cp)]
        lib.g_free.argtypes = [vp]
        lib.g_error_free.argtypes = [ctypes.POINTER(_GError)]
        _glib = lib
    return _glib or None


def available():
    return _lib() is not None


class KeyFile(object):
    """A loaded GKeyFile. Typed getters call GLib's own (so "1.0" as an integer fails as it does in nvinfer)."""

    def __init__(self, path=None, text=None):
        lib = _lib()
        if lib is None:
            raise ConfigError("libglib-2.0 not found: install it (Debian/Ubuntu: libglib2.0-0) to read DeepStream "
                              "configs with GKeyFile")
        self._lib, self._kf, self.path = lib, lib.g_key_file_new(), path
        err = ctypes.POINTER(_GError)()
        if path is not None:
            ok = lib.g_key_file_load_from_file(self._kf, str(path).encode(), 0, ctypes.byref(err))
        else:
            data = text.encode()
            ok = lib.g_key_file_load_from_data(self._kf, data, len(data), 0, ctypes.byref(err))
        if not ok:
            raise ConfigError("GKeyFile cannot parse {}: {}".format(path or "<text>", self._take_error(err)))

    def __del__(self):
        if getattr(self, "_kf", None):
            self._lib.g_key_file_free(self._kf)
            self._kf = None

    def _take_error(self, err):
        msg = err.contents.message.decode(errors="replace") if err else "unknown error"
        if err:
            self._lib.g_error_free(err)
        return msg

    def _call(self, fn, group, key, *extra):
        err = ctypes.POINTER(_GError)()
        args = [self._kf, group.encode(), key.encode()] + list(extra) + [ctypes.byref(err)]
        out = fn(*args)
        if err:
            raise ConfigError("{} [{}] {}: {}".format(self.path or "<text>", group, key, self._take_error(err)))
        return out

    def _strv(self, ptr, n=None):
        out = []
        i = 0
        while ptr and (ptr[i] is not None) and (n is None or i < n):
            out.append(ptr[i].decode())
            i += 1
        if ptr:
            self._lib.g_strfreev(ptr)
        return out

    def groups(self):
        return self._strv(self._lib.g_key_file_get_groups(self._kf, None))

    def keys(self, group):
        err = ctypes.POINTER(_GError)()
        ptr = self._lib.g_key_file_get_keys(self._kf, group.encode(), None, ctypes.byref(err))
        if err:
            raise ConfigError("{}: {}".format(self.path, self._take_error(err)))
        return self._strv(ptr)

    def _owned_str(self, ptr):
        s = ctypes.cast(ptr, ctypes.c_char_p).value.decode()
        self._lib.g_free(ptr)
        return s

    def value(self, group, key):
        return self._owned_str(self._call(self._lib.g_key_file_get_value, group, key))

    def string(self, group, key):
        return self._owned_str(self._call(self._lib.g_key_file_get_string, group, key))

    def integer(self, group, key):
        return int(self._call(self._lib.g_key_file_get_integer, group, key))

    def double(self, group, key):
        return float(self._call(self._lib.g_key_file_get_double, group, key))

    def boolean(self, group, key):
        return bool(self._call(self._lib.g_key_file_get_boolean, group, key))

    def double_list(self, group, key):
        n = ctypes.c_size_t()
        ptr = self._call(self._lib.g_key_file_get_double_list, group, key, ctypes.byref(n))
        out = [ptr[i] for i in range(n.value)]
        self._lib.g_free(ctypes.cast(ptr, ctypes.c_void_p))
        return out

    def string_list(self, group, key):
        n = ctypes.c_size_t()
        return self._strv(self._call(self._lib.g_key_file_get_string_list, group, key, ctypes.byref(n)), n.value)

    def to_dict(self):
        return {g: {k: self.value(g, k) for k in self.keys(g)} for g in self.groups()}
