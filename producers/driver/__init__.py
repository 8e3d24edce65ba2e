"""The driver tablet app: web pages and a small API that speak Kafka (``drt driver``)."""
