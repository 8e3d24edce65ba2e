"""The passenger gateway: a booking API over HTTP that speaks Kafka behind it (``drt gateway``)."""
