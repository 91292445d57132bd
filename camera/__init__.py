"""Camera capture, face quality, liveness, 1:1 match, card photo."""
