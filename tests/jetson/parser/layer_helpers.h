// Building NvDsInferLayerInfo for the parser's tests and benchmark.
#ifndef EDGEEXPORT_LAYER_HELPERS_H
#define EDGEEXPORT_LAYER_HELPERS_H

#include <cstring>

#include "nvdsinfer.h"

// A host output layer of rank 1 (d1 == 0) or 2, numElements consistent with its dims.
inline NvDsInferLayerInfo makeLayer(const char *name, void *buf, NvDsInferDataType type, unsigned d0,
                                    unsigned d1 = 0) {
    NvDsInferLayerInfo l;
    std::memset(&l, 0, sizeof(l));
    l.dataType = type;
    l.inferDims.numDims = d1 ? 2 : 1;
    l.inferDims.d[0] = d0;
    l.inferDims.d[1] = d1;
    l.inferDims.numElements = d0 * (d1 ? d1 : 1);
    l.layerName = name;
    l.buffer = buf;
    return l;
}

#endif
