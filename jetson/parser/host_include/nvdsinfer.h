/*
 * Host stand-in for DeepStream 6.0.1's nvdsinfer.h, written by edgeexport from the documented API
 * (DeepStream SDK API reference) so that the parser compiles and is tested on machines without DeepStream.
 * Only what a bbox parser needs. On a Jetson, the Makefile uses the SDK's own headers instead.
 * Layouts must match the SDK exactly: the parser is built against the SDK's headers on the device.
 */
#ifndef EDGEEXPORT_HOST_NVDSINFER_H
#define EDGEEXPORT_HOST_NVDSINFER_H

#include <stdint.h>

#define NVDSINFER_MAX_DIMS 8

typedef enum {
    FLOAT = 0,
    HALF = 1,
    INT8 = 2,
    INT32 = 3
} NvDsInferDataType;

/* Dimensions of a layer, excluding the batch dimension. */
typedef struct {
    unsigned int numDims;
    unsigned int d[NVDSINFER_MAX_DIMS];
    unsigned int numElements;
} NvDsInferDims;

/* One input or output layer; buffer is this frame's host slice for output layers given to a parser. */
typedef struct {
    NvDsInferDataType dataType;
    union {
        NvDsInferDims inferDims;
        NvDsInferDims dims;
    };
    int bindingIndex;
    const char *layerName;
    void *buffer;
    int isInput;
} NvDsInferLayerInfo;

typedef struct {
    unsigned int width;
    unsigned int height;
    unsigned int channels;
} NvDsInferNetworkInfo;

/* DeepStream 6.0.1's detection object. Later releases append fields: never assume a larger struct. */
typedef struct {
    unsigned int classId;
    float left;
    float top;
    float width;
    float height;
    float detectionConfidence;
} NvDsInferObjectDetectionInfo;

typedef NvDsInferObjectDetectionInfo NvDsInferParseObjectInfo;

#endif
