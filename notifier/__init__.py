"""Vigil's notifier: relays outbox rows to Telegram and, in portable mode, drives the jobs."""
