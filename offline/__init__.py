"""Durable outbox and sync worker (离线队列): nothing the back end has not acknowledged is lost."""
