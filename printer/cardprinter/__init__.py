"""Card printer with contact chip station, reject bin and optional embosser (制卡机).

``protocol`` (Evolis-style escape commands, pure), ``transport`` (TCP / serial / USB device
file, I/O only), ``driver`` (the sequence the visit flow calls and resumes), ``simulator``
(the far end of a real link, with fault injection).
"""
