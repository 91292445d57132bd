"""The PIN entry screen over the real simulated PIN pad (pty): the citizen presses the pad's keys
(here through the demo's clearly marked stand-in keypad); the screen shows one dot per key, the
countdown, and why a PIN was refused; no digit reaches the screen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from hardware.pinpad.driver import EncryptedPinPad
from hardware.pinpad.simulator import PinPadSimulator
from kiosk.pin_entry import PromptingPinObserver
from kiosk.pins import PinResult, SocialSecurityPinService
from kiosk.runtime import Services
from kiosk.visit import Flow, Step

pytestmark = pytest.mark.ui


class Chip:
    """A chip that records the PIN it was given (a byte copy, as the APDU would carry it)."""

    def __init__(self) -> None:
        self.pin = b""

    def change_pin(self, old_pin: bytearray, new_pin: bytearray) -> None:
        self.pin = bytes(new_pin)

    def reload_pin(self, new_pin: bytearray) -> None:
        self.pin = bytes(new_pin)


@pytest.fixture
def pad() -> Iterator[tuple[PinPadSimulator, EncryptedPinPad]]:
    sim = PinPadSimulator().start()
    device = EncryptedPinPad(sim.path).open()
    try:
        yield sim, device
    finally:
        device.close()
        sim.stop()


def test_dots_follow_the_keys_and_a_refused_pin_is_explained(make_ui, pad) -> None:
    sim, device = pad
    chip = Chip()
    outcomes = []

    def set_pin(ctx):
        service = SocialSecurityPinService(device, chip, timeout_s=20, observer=PromptingPinObserver(ctx.prompter))
        outcomes.append(service.set_pin(date(1955, 3, 12)))

    h = make_ui(flows={"pin": Flow("pin", "app.title", (Step("set_pin", set_pin),))}, services=Services())
    h.ui.demo_pinpad_press = sim.press
    h.ui.start_business("pin")
    h.wait_for(lambda: h.ui.manager.current == "pin_entry")
    screen = h.screen
    assert screen.digits == 0 and screen.ids.countdown.running
    keys = [w for w in screen.walk() if type(w).__name__ == "SimKey"]
    by_label = {k.key or k.text: k for k in keys}
    texts = " ".join(w.text for w in screen.walk() if getattr(w, "text", ""))
    assert "模拟密码键盘" in texts, "the stand-in keypad must say it is simulated"

    def press(label: str) -> None:
        by_label[label].dispatch("on_release")

    for n, digit in enumerate("234567", start=1):  # a sequence: refused by the policy
        press(digit)
        h.wait_for(lambda n=n: screen.digits == n)
    assert "●  ●  ●  ●  ●  ●" in " ".join(w.text for w in screen.walk() if getattr(w, "text", ""))
    press("ENTER")
    h.wait_for(lambda: screen.refusal_key == "pinpad.refused.sequence" and screen.digits == 0)
    for round_ in range(2):
        for digit in "582947":
            press(digit)
        h.wait_for(lambda: screen.digits == 6)
        press("CLEAR")
        h.wait_for(lambda: screen.digits == 5)
        press("7")
        press("ENTER")
        if round_ == 0:
            h.wait_for(lambda: screen.step_key == "pinpad.confirm_social_security_pin" and screen.digits == 0)
    h.wait_for(lambda: not h.core.visit_running)
    assert outcomes[0].result is PinResult.SET
    assert chip.pin == b"582947"
    shown = " ".join(str(v) for v in screen.data.values())
    assert "582947" not in shown
