// A C entry point over the parser's C++ ABI, for Python (ctypes): the tests and `python -m edgeexport.emulate`
// call the very .so DeepStream loads, through its exported symbols, with real graph outputs.
// Built only on hosts (EDGEEXPORT_HOST_HEADERS); DeepStream itself never loads this file.
#include <dlfcn.h>

#include <cstring>
#include <vector>

#include "nvdsinfer_custom_impl.h"

extern "C" {

// Returns the number of objects written (<= capacity), -1 if the parser returned false, -2 if the symbol or
// library is missing. `total` receives the number of objects the parser produced.
int edgeexport_call_parser(const char *library, const char *function, const NvDsInferLayerInfo *layers, int numLayers,
                           unsigned netWidth, unsigned netHeight, unsigned numClassesConfigured,
                           const float *thresholds, int numThresholds, NvDsInferObjectDetectionInfo *out,
                           int capacity, int *total) {
    void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!handle) return -2;
    NvDsInferParseCustomFunc fn = (NvDsInferParseCustomFunc)dlsym(handle, function);
    if (!fn) return -2;
    std::vector<NvDsInferLayerInfo> infos(layers, layers + numLayers);
    NvDsInferNetworkInfo net = {netWidth, netHeight, 3};
    NvDsInferParseDetectionParams params;
    params.numClassesConfigured = numClassesConfigured;
    params.perClassPreclusterThreshold.assign(thresholds, thresholds + numThresholds);
    params.perClassPostclusterThreshold.assign(numThresholds, 0.0f);
    std::vector<NvDsInferObjectDetectionInfo> objects;
    bool ok = fn(infos, net, params, objects);
    if (total) *total = (int)objects.size();
    if (!ok) return -1;
    int n = (int)objects.size() < capacity ? (int)objects.size() : capacity;
    if (n > 0) std::memcpy(out, objects.data(), sizeof(NvDsInferObjectDetectionInfo) * (size_t)n);
    return n;
}

// sizeof and offsets the Python side checks its ctypes mirror against.
int edgeexport_layer_info_size(void) { return (int)sizeof(NvDsInferLayerInfo); }
int edgeexport_object_info_size(void) { return (int)sizeof(NvDsInferObjectDetectionInfo); }
}
