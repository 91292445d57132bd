from tests.ui.test_citizen_screens import *  # noqa
from tests.ui.test_citizen_screens import ui, photo  # noqa

def test_dbg(ui, photo):
    show(ui, keypad_prompt(initial="1380013"))
    ui.ui.present(take_prompt(), None)
    ui.pump(1.0)
    m = ui.ui.manager
    print("DBG", m.current, m.transition.is_active, m.current_screen.name)
