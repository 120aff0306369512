"""The zero-install stack for `vigil demo` and the tests: an embedded PostgreSQL and an
MQTT broker (Mosquitto when installed, else amqtt), each a child process on this machine."""
