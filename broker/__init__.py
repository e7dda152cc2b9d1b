"""The embedded MQTT broker (amqtt) that ``teddyhub up`` runs when no broker is configured."""
