"""The device-facing side: device credentials and the MQTT broker's view of them."""
