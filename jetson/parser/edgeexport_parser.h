// The parser library's entry points (NvDsInferParseCustomFunc prototypes), for its tests, benchmark and fuzz
// target, and included by the library itself so that declaration and definition cannot drift apart.
#ifndef EDGEEXPORT_PARSER_H
#define EDGEEXPORT_PARSER_H

#include <vector>

#include "nvdsinfer_custom_impl.h"

extern "C" bool NvDsInferParseEdgeExport(std::vector<NvDsInferLayerInfo> const &outputLayersInfo,
                                         NvDsInferNetworkInfo const &networkInfo,
                                         NvDsInferParseDetectionParams const &detectionParams,
                                         std::vector<NvDsInferObjectDetectionInfo> &objectList);
extern "C" bool NvDsInferParseEdgeExportTopClass(std::vector<NvDsInferLayerInfo> const &outputLayersInfo,
                                                 NvDsInferNetworkInfo const &networkInfo,
                                                 NvDsInferParseDetectionParams const &detectionParams,
                                                 std::vector<NvDsInferObjectDetectionInfo> &objectList);
extern "C" bool NvDsInferParseEdgeExportNMS(std::vector<NvDsInferLayerInfo> const &outputLayersInfo,
                                            NvDsInferNetworkInfo const &networkInfo,
                                            NvDsInferParseDetectionParams const &detectionParams,
                                            std::vector<NvDsInferObjectDetectionInfo> &objectList);

#endif
