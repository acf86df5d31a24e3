"""MQTT ingest (paho-mqtt 2.x, MQTT 5): QoS 1, a fixed client id and a persistent session
(clean_start=False with a session expiry, the MQTT 5 form of clean_session=False), so the broker
keeps what arrives while we are away. A message is acknowledged only after its batch has
committed; a redelivered duplicate is dropped by msg_id. Receive Maximum (65,535) lets the broker
keep that many messages in flight to us: with the MQTT 3.1.1 window (mosquitto: 20 in flight,
1,000 queued, the rest dropped) a burst would be cut short while acks wait for a commit.
paho reconnects by itself with exponential backoff after broker restarts."""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlparse

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from geoapi.telemetry.adapters import DEVICE_KEYS, parse_plain
from geoapi.telemetry.normalize import PayloadError
from geoapi.telemetry.service import TelemetryService

log = logging.getLogger("geoapi.telemetry.mqtt")


class MqttSubscriber:
    def __init__(self, url: str, topic: str, service: TelemetryService, *, client_id: str = "geoapi-telemetry",
                 reconnect_max_s: int = 30):
        u = urlparse(url)
        if u.scheme not in ("mqtt", "tcp", ""):
            raise ValueError(f"GEOAPI_MQTT_URL must be mqtt://host:port, not {url!r}")
        self.host, self.port, self.topic = u.hostname or "127.0.0.1", u.port or 1883, topic
        self.service = service
        self.connected = False
        self.received = 0
        self.rejected = 0
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True)
        if u.username:
            c.username_pw_set(unquote(u.username), unquote(u.password) if u.password else None)
        c.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_s)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.enable_logger(logging.getLogger("paho"))
        self.client = c

    def start(self, *, session_expiry_s: int = 7 * 86400, receive_maximum: int = 65535) -> MqttSubscriber:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry_s
        props.ReceiveMaximum = receive_maximum
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT connect to %s:%s refused: %s", self.host, self.port, reason_code)
            return
        self.connected = True
        client.subscribe(self.topic, qos=1)
        log.info("MQTT connected to %s:%s, subscribed to %s (session present: %s)", self.host, self.port,
                 self.topic, flags.session_present)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        log.warning("MQTT disconnected from %s:%s (%s); reconnecting", self.host, self.port, reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        mid, qos = msg.mid, msg.qos
        try:
            body = orjson.loads(msg.payload)
            if isinstance(body, dict) and not any(body.get(k) for k in DEVICE_KEYS):
                body["imei"] = msg.topic.rsplit("/", 1)[-1]  # geoapi/telemetry/<imei>
            readings = parse_plain(body, source="mqtt")
        except (orjson.JSONDecodeError, PayloadError) as exc:
            self.rejected += 1
            log.warning("MQTT message on %s rejected: %s", msg.topic, getattr(exc, "detail", exc))
            client.ack(mid, qos)  # it will never parse; do not have it redelivered
            return
        self.service.submit(readings, on_done=lambda _result: client.ack(mid, qos))
