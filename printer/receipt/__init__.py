"""Thermal receipt printer (凭条打印机): ESC/POS driver, receipt templates, loopback simulator and
PNG preview. See docs/receipt.md."""
