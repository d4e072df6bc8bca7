"""The PII recognizers, one per file (Presidio's layout); :mod:`privacy.pii.registry` lists those in use."""

from privacy.pii.recognizers.base import PiiPatternRecognizer
from privacy.pii.recognizers.credit_card_recognizer import CreditCardRecognizer
from privacy.pii.recognizers.date_of_birth_recognizer import DateOfBirthRecognizer
from privacy.pii.recognizers.deny_list_recognizer import DenyListRecognizer
from privacy.pii.recognizers.email_recognizer import EmailRecognizer
from privacy.pii.recognizers.kr_brn_recognizer import KrBrnRecognizer
from privacy.pii.recognizers.kr_driver_license_recognizer import KrDriverLicenseRecognizer
from privacy.pii.recognizers.kr_frn_recognizer import KrFrnRecognizer
from privacy.pii.recognizers.kr_passport_recognizer import KrPassportRecognizer
from privacy.pii.recognizers.kr_phone_recognizer import KrPhoneRecognizer
from privacy.pii.recognizers.kr_rrn_recognizer import KrRrnRecognizer
from privacy.pii.recognizers.mrn_recognizer import MrnRecognizer

__all__ = [
    "CreditCardRecognizer",
    "DateOfBirthRecognizer",
    "DenyListRecognizer",
    "EmailRecognizer",
    "KrBrnRecognizer",
    "KrDriverLicenseRecognizer",
    "KrFrnRecognizer",
    "KrPassportRecognizer",
    "KrPhoneRecognizer",
    "KrRrnRecognizer",
    "MrnRecognizer",
    "PiiPatternRecognizer",
]
