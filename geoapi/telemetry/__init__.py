"""Smart-cover and water-gauge telemetry: payload adapters, rules, alarms, MQTT ingest."""
