"""Device drivers and simulators on serial and PC/SC links: ID card reader, smart card + PSAM, PIN pad."""
