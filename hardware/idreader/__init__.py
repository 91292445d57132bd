"""ID card reader (身份证阅读器): GA/T 467 SAM_V module over serial.

- ``protocol``: frames, SW3 codes and the four text-block layouts, pure functions over bytes;
- ``reader``: the pyserial driver (:class:`~hardware.idreader.reader.IdCardReader`);
- ``simulator``: a module on a pseudo-terminal with a deck of fictitious cards and faults;
- ``photo``: WLT photo decoders (vendor library via ctypes, and the simulated one).
"""
