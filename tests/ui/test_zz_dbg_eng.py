from tests.ui.test_engineer_pages import *  # noqa
from screens.touch import find_choice, settled, touch, _ancestors
from kivy.core.window import Window

def test_dbg(make_ui, tmp_path):
    h, devices = engineer_ui(make_ui, tmp_path)
    sign_in(h)
    page = open_page(h, "eng_faults")
    press(h, "device:cardprinter")
    h.pump(0.5)
    w = find_choice(h.ui, "fault:cardprinter:jam")
    print("WINDOW", Window.size, "widget", w, w and (w.pos, w.size, w.to_window(*w.center), settled(w)))
    for a in _ancestors(w)[:6]:
        print(type(a).__name__, a.pos, a.size, getattr(a, "scroll_y", None))
    assert False
