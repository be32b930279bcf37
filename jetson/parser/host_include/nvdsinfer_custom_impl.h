/*
 * Host stand-in for DeepStream 6.0.1's nvdsinfer_custom_impl.h (bbox-parser part only), written by edgeexport
 * from the documented API. On a Jetson the SDK's header is used.
 */
#ifndef EDGEEXPORT_HOST_NVDSINFER_CUSTOM_IMPL_H
#define EDGEEXPORT_HOST_NVDSINFER_CUSTOM_IMPL_H

#include <vector>
#include "nvdsinfer.h"

typedef struct {
    unsigned int numClassesConfigured;
    std::vector<float> perClassPreclusterThreshold;
    std::vector<float> perClassPostclusterThreshold;
    std::vector<float> &perClassThreshold = perClassPreclusterThreshold;
} NvDsInferParseDetectionParams;

typedef bool (*NvDsInferParseCustomFunc)(std::vector<NvDsInferLayerInfo> const &outputLayersInfo,
                                         NvDsInferNetworkInfo const &networkInfo,
                                         NvDsInferParseDetectionParams const &detectionParams,
                                         std::vector<NvDsInferObjectDetectionInfo> &objectList);

/* Compile-time check that a function has the NvDsInferParseCustomFunc prototype, and its C declaration. */
#define CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(customParseFunc)                                             \
    static void checkFunc_##customParseFunc(NvDsInferParseCustomFunc func = customParseFunc) {        \
        checkFunc_##customParseFunc();                                                                 \
    };                                                                                                 \
    extern "C" bool customParseFunc(std::vector<NvDsInferLayerInfo> const &outputLayersInfo,           \
                                    NvDsInferNetworkInfo const &networkInfo,                           \
                                    NvDsInferParseDetectionParams const &detectionParams,              \
                                    std::vector<NvDsInferObjectDetectionInfo> &objectList);

#endif
