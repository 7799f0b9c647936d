"""Durable delivery from the post to HQ: the signed journal (source of truth) and the MQTT uplink."""
