"""nvmsgconv's message schema in Python (edgeexport.device.deepstream.msgconv), as dsmeta_payload.cpp @6.0.1
builds it."""
import json
import re

from edgeexport.device import keyfile
from edgeexport.device.deepstream.app_config import msgconv_config_text
from edgeexport.device.deepstream.msgconv import (UNTRACKED_OBJECT_ID, Detection, config_entries, frame_messages,
                                                  minimal_message, timestamp)
from edgeexport.device.deepstream.streams import Source


def _entries():
    return config_entries(keyfile.KeyFile(text=msgconv_config_text([Source("rtsp", "rtsp://cam/1")])), 0)


def test_minimal_message_is_one_per_frame_with_pipe_separated_objects():
    m = minimal_message(60, "source0", [Detection(10.5, 20, 100.25, 50, "car", 0.9)], ts="2026-01-01T00:00:00.000Z")
    # ostream's default float format (6 significant digits): 110.75, 70
    assert m == {"version": "4.0", "id": 60, "@timestamp": "2026-01-01T00:00:00.000Z", "sensorId": "source0",
                 "objects": ["{}|10.5|20|110.75|70|car".format(UNTRACKED_OBJECT_ID)]}


def test_full_message_is_one_per_object_with_integer_bbox_and_the_config_entries():
    msgs = frame_messages(0, [Detection(10.9, 20.2, 30, 40, "person", 0.75), Detection(0, 0, 1, 1, "car", 0.5)],
                          "full", _entries(), 30)
    assert len(msgs) == 2
    m = json.loads(msgs[0])
    assert m["object"]["bbox"] == {"topleftx": 10, "toplefty": 20, "bottomrightx": 40, "bottomrighty": 60}
    assert m["object"]["person"] == {"confidence": 0.75} and m["sensor"]["id"] == "source0"
    assert m["sensor"]["location"] == {"lat": 0.0, "lon": 0.0, "alt": 0.0} and m["place"]["name"] == "source0"
    assert m["analyticsModule"]["id"] == "edgeexport" and m["event"]["type"] == "" and m["videoPath"] == ""
    assert m["messageid"] != json.loads(msgs[1])["messageid"]


def test_only_every_nth_frame_sends():
    dets = [Detection(0, 0, 1, 1, "car", 0.5)]
    assert [len(frame_messages(i, dets, "minimal", _entries(), 30)) for i in (0, 1, 29, 30, 60)] == [1, 0, 0, 1, 1]


def test_timestamp_is_rfc3339_milliseconds_utc():
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", timestamp())


def test_a_group_nvmsgconv_skips_is_null_in_the_message():
    """enable=0, or no enable key (g_key_file_get_boolean fails): deepstream_schema.cpp skips the group
    (:72-76, 173-177, 288-292 @6.0.1), generate_*_object returns NULL, json-glib writes null; minimal: sensorId
    "0" (dsmeta_payload.cpp:460-467)."""
    kf = keyfile.KeyFile(text="[sensor0]\nenable=0\nid=cam\n\n[place0]\nid=1\n\n[analytics0]\nenable=1\nid=det\n")
    sensor, place, analytics = config_entries(kf, 0)
    assert sensor is None and place is None and analytics["id"] == "det"

    class Obj(object):
        left, top, width, height, object_id, label, confidence = 1.0, 2.0, 3.0, 4.0, 7, "cat", 0.9
    full = json.loads(frame_messages(0, [Obj()], "full", (sensor, place, analytics), 1)[0])
    assert full["sensor"] is None and full["place"] is None and full["analyticsModule"]["id"] == "det"
    minimal = json.loads(frame_messages(0, [Obj()], "minimal", (sensor, place, analytics), 1)[0])
    assert minimal["sensorId"] == "0"
