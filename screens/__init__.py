"""The Kivy UI: one screen per step; shows what the core asks and sends back the answers. Knows no device."""
