"""The 36 characters a plate or a container code is read in, in one order.

The recognizer's output is folded onto ``ALNUM`` (``ocr``) and the syntax step indexes those
probabilities by the same order (``syntax``), so the order is defined once, here.
"""

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = DIGITS + LETTERS
