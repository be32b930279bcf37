"""The messages DeepStream's nvmsgconv writes for detections, built the same way in Python, so that code which
consumes them can be written and tested before the board arrives (``edgeexport.emulate --publish``).

With ``msg-conv-msg2p-new-api=1`` (what deepstream_config writes), nvmsgconv builds messages from the frame and
object metadata every ``frame-interval``-th frame (``frame_num % interval == 0``, gstnvmsgconv.c:585-589 @6.0.1):

- payload 0, "full" (generate_dsmeta_message, dsmeta_payload.cpp:290-370 @6.0.1): one message per object, with
  the source's sensor/place/analytics entries of the msgconv config, the object as
  ``{"id", "speed", "direction", "orientation", <label>: {"confidence"}, "bbox": {...}, "location", "coordinate"}``;
- payload 1, "minimal" (generate_dsmeta_message_minimal, :372-492): one message per frame,
  ``{"version": "4.0", "id": frame_num, "@timestamp", "sensorId", "objects": ["id|left|top|right|bottom|label"]}``.

Boxes are in nvstreammux pixels: the scale factor nvmsgconv computes is always 1 (its conditional expression binds
as ``(w / (pw == 0)) ? 1 : pw``, :245-250), and bbox members are integers (json_object_set_int_member truncates).
An object nvtracker has not seen has object_id UNTRACKED_OBJECT_ID, 2^64 - 1 (nvdsmeta.h), printed with %lu.
Timestamps: UTC, milliseconds, "%Y-%m-%dT%H:%M:%S.mmmZ" (generate_ts_rfc3339, :27-41).
Device-side (Python 3.6, standard library only).
"""
import datetime
import json
import uuid

UNTRACKED_OBJECT_ID = 2 ** 64 - 1
PAYLOADS = ("full", "minimal")


def timestamp(now=None):
    now = now or datetime.datetime.utcnow()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + "{:03d}Z".format(now.microsecond // 1000)


def _float_text(v):
    """A float as C++'s ostream prints it by default (6 significant digits, %g)."""
    return "{:g}".format(float(v))


class Detection(object):
    """One object as nvmsgconv sees it: box in muxer pixels, label, confidence, tracking id."""

    def __init__(self, left, top, width, height, label, confidence, object_id=UNTRACKED_OBJECT_ID):
        self.left, self.top, self.width, self.height = float(left), float(top), float(width), float(height)
        self.label, self.confidence, self.object_id = str(label), float(confidence), int(object_id)

    @classmethod
    def from_box(cls, box, label, confidence):
        x1, y1, x2, y2 = [float(v) for v in box]
        return cls(x1, y1, x2 - x1, y2 - y1, label, confidence)


def sends(frame_num, interval):
    return interval <= 0 or frame_num % interval == 0


def minimal_message(frame_num, sensor_id, objects, ts=None):
    strings = []
    for o in objects:
        strings.append("|".join([str(o.object_id), _float_text(o.left), _float_text(o.top),
                                 _float_text(o.left + o.width), _float_text(o.top + o.height), o.label]))
    return {"version": "4.0", "id": int(frame_num), "@timestamp": ts or timestamp(), "sensorId": str(sensor_id),
            "objects": strings}


def full_message(obj, sensor, place, analytics, ts=None):
    """``sensor``/``place``/``analytics``: the msgconv config's entries for the frame's source (dicts as
    ``config_entries`` returns them); one without an entry is null, as json-glib writes the NULL object
    generate_*_object returns then (dsmeta_payload.cpp:52-60, 124-131, 183-190, 339-346 @6.0.1; json-glib
    json-object.c json_object_set_object_member: a NULL value becomes a null member)."""
    left, top = obj.left, obj.top
    return {
        "messageid": str(uuid.uuid4()), "mdsversion": "1.0", "@timestamp": ts or timestamp(),
        "place": None if place is None else {
            "id": place["id"], "name": place["name"], "type": place["type"],
            "location": dict(zip(("lat", "lon", "alt"), place["location"])),
            "place-sub-field": {"id": place["sub"][0], "name": place["sub"][1], "level": place["sub"][2],
                                "coordinate": dict(zip("xyz", place["coordinate"]))}},
        "sensor": None if sensor is None else {
            "id": sensor["id"], "type": sensor["type"], "description": sensor["description"],
            "location": dict(zip(("lat", "lon", "alt"), sensor["location"])),
            "coordinate": dict(zip("xyz", sensor["coordinate"]))},
        "analyticsModule": None if analytics is None else {
            "id": analytics["id"], "description": analytics["description"], "source": analytics["source"],
            "version": analytics["version"]},
        "object": {"id": str(obj.object_id), "speed": 0.0, "direction": 0.0, "orientation": 0.0,
                   obj.label: {"confidence": obj.confidence},
                   "bbox": {"topleftx": int(left), "toplefty": int(top), "bottomrightx": int(left + obj.width),
                            "bottomrighty": int(top + obj.height)},
                   "location": {}, "coordinate": {}},
        "event": {"id": str(uuid.uuid4()), "type": ""},
        "videoPath": "",
    }


def config_entries(kf, source_id):
    """The [sensorN], [placeN], [analyticsN] entries of a loaded msgconv config (a KeyFile) for source N, each None
    where nvmsgconv keeps none: a group it skips is one whose ``enable`` is false or missing (g_key_file_get_boolean
    fails on a missing key: deepstream_schema.cpp:72-76, 173-177, 288-292 @6.0.1), or that is not there."""
    def get(group, key, kind="string", default=""):
        if key not in kf.keys(group):
            return default
        return kf.double_list(group, key) if kind == "list" else kf.string(group, key)

    def enabled(group):
        return group in kf.groups() and "enable" in kf.keys(group) and kf.boolean(group, "enable")
    s, p, a = "sensor{}".format(source_id), "place{}".format(source_id), "analytics{}".format(source_id)
    sensor = {"id": get(s, "id"), "type": get(s, "type"), "description": get(s, "description"),
              "location": get(s, "location", "list", [0.0] * 3),
              "coordinate": get(s, "coordinate", "list", [0.0] * 3)} if enabled(s) else None
    place = {"id": get(p, "id"), "name": get(p, "name"), "type": get(p, "type"),
             "location": get(p, "location", "list", [0.0] * 3), "coordinate": get(p, "coordinate", "list", [0.0] * 3),
             "sub": [get(p, "place-sub-field1"), get(p, "place-sub-field2"), get(p, "place-sub-field3")]} \
        if enabled(p) else None
    analytics = {"id": get(a, "id"), "description": get(a, "description"), "source": get(a, "source"),
                 "version": get(a, "version")} if enabled(a) else None
    return sensor, place, analytics


def frame_messages(frame_num, objects, payload, entries, interval):
    """The JSON strings nvmsgconv would send for one frame of source ``entries`` (its config entries)."""
    if not sends(frame_num, interval):
        return []
    sensor, place, analytics = entries
    if payload == "minimal":  # sensorId "0" where the sensor has no entry (dsmeta_payload.cpp:460-467 @6.0.1)
        return [json.dumps(minimal_message(frame_num, sensor["id"] if sensor else "0", objects))]
    return [json.dumps(full_message(o, sensor, place, analytics)) for o in objects]
