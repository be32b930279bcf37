// libFuzzer target: arbitrary layer names, types, dims, numElements and contents for all three entry points.
// Buffers are allocated to exactly the element count the dims claim (capped), so an out-of-bounds read by the
// parser, which must trust nothing but consistent dims, is caught by AddressSanitizer.
#include <cstdint>
#include <cstring>
#include <vector>

#include "edgeexport_parser.h"


namespace {
struct Reader {
    const uint8_t *p;
    size_t n;
    uint8_t byte() { return n ? (--n, *p++) : 0; }
    uint32_t u32() { uint32_t v = 0; for (int i = 0; i < 4; ++i) v = (v << 8) | byte(); return v; }
};
const char *kNames[] = {"boxes", "scores", "top_score", "top_class", "num_detections", "detection_boxes",
                        "detection_scores", "detection_classes", "other"};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Reader r{data, size};
    const unsigned which = r.byte() % 3, numLayers = r.byte() % 6;
    std::vector<std::vector<uint8_t>> storage(numLayers);
    std::vector<NvDsInferLayerInfo> layers(numLayers);
    for (unsigned i = 0; i < numLayers; ++i) {
        NvDsInferLayerInfo &l = layers[i];
        std::memset(&l, 0, sizeof(l));
        l.layerName = kNames[r.byte() % 9];
        l.dataType = (NvDsInferDataType)(r.byte() % 4);
        l.inferDims.numDims = r.byte() % 10;  // may exceed NVDSINFER_MAX_DIMS on purpose
        for (unsigned d = 0; d < NVDSINFER_MAX_DIMS; ++d) l.inferDims.d[d] = r.byte() % 40;
        uint64_t claimed = 1;
        for (unsigned d = 0; d < l.inferDims.numDims && d < NVDSINFER_MAX_DIMS; ++d) claimed *= l.inferDims.d[d];
        // numElements: usually the product (so the data path runs), sometimes a lie
        l.inferDims.numElements = (r.byte() % 8) ? (unsigned)claimed : (unsigned)r.byte();
        uint64_t elements = l.inferDims.numElements;
        if (elements > 4096) elements = 4096, l.inferDims.numElements = 4096;
        storage[i].resize(elements * 4);
        for (auto &b : storage[i]) b = r.byte();
        l.buffer = storage[i].empty() ? nullptr : storage[i].data();
    }
    NvDsInferNetworkInfo net = {r.byte() % 2 ? 320u : 0u, 320u, 3u};
    NvDsInferParseDetectionParams params;
    params.numClassesConfigured = r.byte() % 100;
    unsigned nthr = r.byte() % 4;
    for (unsigned i = 0; i < nthr; ++i) params.perClassPreclusterThreshold.push_back((r.byte() % 100) / 100.0f);
    std::vector<NvDsInferObjectDetectionInfo> out;
    if (which == 0) NvDsInferParseEdgeExport(layers, net, params, out);
    else if (which == 1) NvDsInferParseEdgeExportTopClass(layers, net, params, out);
    else NvDsInferParseEdgeExportNMS(layers, net, params, out);
    return 0;
}
