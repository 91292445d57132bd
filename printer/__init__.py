"""Card printer (chip station, face, embosser), card face rendering, receipt printer (ESC/POS)."""
