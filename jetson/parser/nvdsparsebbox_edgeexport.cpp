// nvinfer bbox parsers for edgeexport's deploy graphs (docs/ARCHITECTURE.md, "Deploy graph").
//
//   NvDsInferParseEdgeExport          boxes [N,4] (x1y1x2y2 in [0,1]) + scores [N,K]
//   NvDsInferParseEdgeExportTopClass  boxes [N,4] + top_score [N] + top_class [N] (float class index)
//   NvDsInferParseEdgeExportNMS       EfficientNMS_TRT: num_detections, detection_boxes/scores/classes
//
// Boxes go out in network-input pixels; nvinfer then clusters (cluster-mode=2) and scales them to the frame.
// Every layer is checked (present, float/int32 as expected, dims consistent with numElements) before a single
// value is read: a mismatch logs one line and returns false, never reads out of bounds. NaN and infinite values
// are skipped. The NumPy reference of these functions is edgeexport/postprocess.py.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "edgeexport_parser.h"

namespace {

// One line per distinct problem, a few times at most: a parser runs on every frame and must not flood the log.
void logError(const char *fn, const char *msg, const char *detail) {
    static int printed = 0;
    if (printed < 20) {
        ++printed;
        std::fprintf(stderr, "edgeexport %s: %s%s%s\n", fn, msg, detail ? " " : "", detail ? detail : "");
    }
}

const NvDsInferLayerInfo *findLayer(std::vector<NvDsInferLayerInfo> const &layers, const char *name) {
    for (const NvDsInferLayerInfo &l : layers) {
        if (l.layerName && std::strcmp(l.layerName, name) == 0) return &l;
    }
    return nullptr;
}

// Finds a layer and checks it against an expected rank and trailing size (0 = any) before anything reads it;
// returns its buffer (nullptr after logging the problem) and its leading dim via n.
const void *checkedLayer(const char *fn, std::vector<NvDsInferLayerInfo> const &layers, const char *name,
                         NvDsInferDataType type, unsigned rank, unsigned last, unsigned *n, unsigned *k) {
    char detail[160];
    const NvDsInferLayerInfo *l = findLayer(layers, name);
    if (!l) {
        std::snprintf(detail, sizeof(detail), "'%s' (check output-blob-names and the ONNX outputs)", name);
        logError(fn, "missing output layer", detail);
        return nullptr;
    }
    if (!l->buffer) {
        logError(fn, "null buffer for layer", name);
        return nullptr;
    }
    if (l->dataType != type) {
        std::snprintf(detail, sizeof(detail), "'%s': data type %d, expected %d", name, (int)l->dataType, (int)type);
        logError(fn, "wrong data type for layer", detail);
        return nullptr;
    }
    const NvDsInferDims &d = l->inferDims;
    unsigned long long product = 1;
    bool ok = d.numDims == rank && d.numDims <= NVDSINFER_MAX_DIMS;
    for (unsigned i = 0; ok && i < d.numDims; ++i) product *= d.d[i];
    ok = ok && d.d[0] > 0 && product == d.numElements && (last == 0 || d.d[rank - 1] == last);
    if (ok && rank == 2 && d.d[1] == 0) ok = false;
    if (!ok) {
        std::snprintf(detail, sizeof(detail), "'%s': numDims %u, d = [%u, %u], numElements %u (expected rank %u%s)",
                      name, d.numDims, d.numDims > 0 ? d.d[0] : 0, d.numDims > 1 ? d.d[1] : 0, d.numElements, rank,
                      last ? ", last dim fixed" : "");
        logError(fn, "unexpected dims for layer", detail);
        return nullptr;
    }
    *n = d.d[0];
    if (k) *k = rank > 1 ? d.d[1] : 1;
    return l->buffer;
}

float classThreshold(NvDsInferParseDetectionParams const &p, unsigned c) {
    const std::vector<float> &t = p.perClassPreclusterThreshold;
    if (t.empty()) return 0.0f;
    return t[c < t.size() ? c : t.size() - 1];
}

bool finite4(const float *b) {
    return std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]);
}

void push(std::vector<NvDsInferObjectDetectionInfo> &out, const float *box, NvDsInferNetworkInfo const &net,
          unsigned cls, float score) {
    // Value-initialised: a later nvdsinfer.h may append members to this struct (6.0.1-6.3 have the same six),
    // and those must not hold stack garbage.
    NvDsInferObjectDetectionInfo o{};
    const float w = (float)net.width, h = (float)net.height;
    o.classId = cls;
    o.left = box[0] * w;
    o.top = box[1] * h;
    o.width = box[2] * w - o.left;
    o.height = box[3] * h - o.top;
    o.detectionConfidence = score;
    out.push_back(o);
}

bool checkCommon(const char *fn, NvDsInferNetworkInfo const &net, NvDsInferParseDetectionParams const &p) {
    if (net.width == 0 || net.height == 0) {
        logError(fn, "network width or height is 0", nullptr);
        return false;
    }
    if (p.numClassesConfigured == 0) {
        logError(fn, "num-detected-classes is 0", nullptr);
        return false;
    }
    return true;
}

}  // namespace

extern "C" bool NvDsInferParseEdgeExport(std::vector<NvDsInferLayerInfo> const &layers,
                                         NvDsInferNetworkInfo const &net,
                                         NvDsInferParseDetectionParams const &params,
                                         std::vector<NvDsInferObjectDetectionInfo> &objects) {
    const char *fn = "NvDsInferParseEdgeExport";
    unsigned n = 0, nScores = 0, k = 0;
    if (!checkCommon(fn, net, params)) return false;
    const float *boxes = (const float *)checkedLayer(fn, layers, "boxes", FLOAT, 2, 4, &n, nullptr);
    if (!boxes) return false;
    const float *scores = (const float *)checkedLayer(fn, layers, "scores", FLOAT, 2, 0, &nScores, &k);
    if (!scores) return false;
    if (nScores != n) {
        logError(fn, "boxes and scores disagree on the number of anchors", nullptr);
        return false;
    }
    const unsigned classes = k < params.numClassesConfigured ? k : params.numClassesConfigured;
    for (unsigned i = 0; i < n; ++i) {
        const float *b = boxes + 4ull * i;
        if (!finite4(b)) continue;
        const float *s = scores + (unsigned long long)k * i;
        for (unsigned c = 0; c < classes; ++c) {
            if (std::isfinite(s[c]) && s[c] >= classThreshold(params, c)) push(objects, b, net, c, s[c]);
        }
    }
    return true;
}

extern "C" bool NvDsInferParseEdgeExportTopClass(std::vector<NvDsInferLayerInfo> const &layers,
                                                 NvDsInferNetworkInfo const &net,
                                                 NvDsInferParseDetectionParams const &params,
                                                 std::vector<NvDsInferObjectDetectionInfo> &objects) {
    const char *fn = "NvDsInferParseEdgeExportTopClass";
    unsigned n = 0, nScore = 0, nClass = 0;
    if (!checkCommon(fn, net, params)) return false;
    const float *boxes = (const float *)checkedLayer(fn, layers, "boxes", FLOAT, 2, 4, &n, nullptr);
    if (!boxes) return false;
    const float *score = (const float *)checkedLayer(fn, layers, "top_score", FLOAT, 1, 0, &nScore, nullptr);
    if (!score) return false;
    const float *cls = (const float *)checkedLayer(fn, layers, "top_class", FLOAT, 1, 0, &nClass, nullptr);
    if (!cls) return false;
    if (nScore != n || nClass != n) {
        logError(fn, "boxes, top_score and top_class disagree on the number of anchors", nullptr);
        return false;
    }
    for (unsigned i = 0; i < n; ++i) {
        if (!std::isfinite(score[i]) || !std::isfinite(cls[i]) || cls[i] < 0.0f ||
            cls[i] >= (float)params.numClassesConfigured)
            continue;
        const unsigned c = (unsigned)cls[i];
        const float *b = boxes + 4ull * i;
        if (score[i] >= classThreshold(params, c) && finite4(b)) push(objects, b, net, c, score[i]);
    }
    return true;
}

extern "C" bool NvDsInferParseEdgeExportNMS(std::vector<NvDsInferLayerInfo> const &layers,
                                            NvDsInferNetworkInfo const &net,
                                            NvDsInferParseDetectionParams const &params,
                                            std::vector<NvDsInferObjectDetectionInfo> &objects) {
    const char *fn = "NvDsInferParseEdgeExportNMS";
    unsigned one = 0, m = 0, mScores = 0, mClasses = 0;
    if (!checkCommon(fn, net, params)) return false;
    const int32_t *num = (const int32_t *)checkedLayer(fn, layers, "num_detections", INT32, 1, 1, &one, nullptr);
    if (!num) return false;
    const float *boxes = (const float *)checkedLayer(fn, layers, "detection_boxes", FLOAT, 2, 4, &m, nullptr);
    if (!boxes) return false;
    const float *scores = (const float *)checkedLayer(fn, layers, "detection_scores", FLOAT, 1, 0, &mScores, nullptr);
    if (!scores) return false;
    const int32_t *classes =
        (const int32_t *)checkedLayer(fn, layers, "detection_classes", INT32, 1, 0, &mClasses, nullptr);
    if (!classes) return false;
    if (mScores != m || mClasses != m) {
        logError(fn, "detection_boxes, _scores and _classes disagree on the number of detections", nullptr);
        return false;
    }
    int count = *num;
    if (count < 0) count = 0;
    if ((unsigned)count > m) count = (int)m;
    for (int i = 0; i < count; ++i) {
        if (classes[i] < 0 || (unsigned)classes[i] >= params.numClassesConfigured || !std::isfinite(scores[i]))
            continue;
        const float *b = boxes + 4ll * i;
        if (scores[i] >= classThreshold(params, (unsigned)classes[i]) && finite4(b))
            push(objects, b, net, (unsigned)classes[i], scores[i]);
    }
    return true;
}

CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(NvDsInferParseEdgeExport);
CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(NvDsInferParseEdgeExportTopClass);
CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(NvDsInferParseEdgeExportNMS);
