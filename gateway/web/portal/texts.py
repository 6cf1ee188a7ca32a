"""The portal's words in German and English, and which language a visitor gets.

Status labels are not here: they come from the one status vocabulary (``gateway.statuses``).
"""

from __future__ import annotations

from gateway.config import LANGUAGES

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "portal": "Customer portal", "sign_in": "Sign in", "sign_out": "Sign out",
        "email": "Your mail address", "send_link": "Send me a sign-in link",
        "signin_intro": "No password needed: we mail you a link that signs you in.",
        "link_sent": "Check your mail",
        "link_sent_text": "If this address belongs to one of our customers, a sign-in link is on its "
                          "way. It works once and for {minutes} minutes.",
        "confirm_title": "Sign in to the customer portal",
        "confirm_text": "Press the button to sign in. The link works only once.",
        "link_invalid": "This link cannot be used",
        "link_invalid_text": "It was used already, it has expired, or it is not complete. "
                             "Ask for a new one.",
        "new_link": "Ask for a new link",
        "tickets": "My tickets", "new_ticket": "New ticket", "number": "Number",
        "subject": "Subject", "status": "Status", "updated": "Updated", "customer": "From",
        "search": "Search", "all_states": "All states", "sort": "Sort", "filter": "Show",
        "newest": "Recently updated", "oldest": "Least recently updated", "by_number": "Number",
        "no_tickets": "No tickets found.", "page": "Page", "previous": "Previous", "next": "Next",
        "message": "Message", "attachments": "Attachments", "category": "Category",
        "asset": "Asset or object (e.g. serial number)", "create": "Create ticket",
        "reply": "Add information", "send": "Send", "close": "Close ticket",
        "close_text": "Solved? Close the ticket. A new message after that opens a new ticket.",
        "closed_text": "This ticket is closed.", "support": "Support", "you": "Customer",
        "organisation": "Organisation", "created": "Created", "asset_short": "Asset",
        "files_hint": "At most {count} files, {size} MB each.",
        "error": "Something went wrong", "back": "Back to my tickets",
        "e400": "The form could not be read. Please try again.",
        "e403": "This form has expired or was not sent from this portal. Reload the page and "
                "try again.",
        "e404": "There is no such ticket, or it is not yours.",
        "e409": "This ticket is closed and takes no more messages. Please open a new ticket.",
        "e413": "The files are too large.",
        "e422": "Please check the form: {detail}",
        "e429": "Too many sign-in requests. Please wait a while and try again.",
        "e500": "The request could not be processed. Please try again later.",
        "e503": "The service is unavailable right now. Please try again later.",
        "need_text": "a message needs text or attachments",
        "need_subject": "the subject is missing",
        "bad_email": "that is not a valid mail address",
        "too_many_files": "at most {count} files",
        "too_big_file": "each file at most {size} MB",
        "signed_in_as": "Signed in as",
    },
    "de": {
        "portal": "Kundenportal", "sign_in": "Anmelden", "sign_out": "Abmelden",
        "email": "Ihre E-Mail-Adresse", "send_link": "Anmeldelink senden",
        "signin_intro": "Kein Passwort nötig: Wir schicken Ihnen einen Link, der Sie anmeldet.",
        "link_sent": "Bitte sehen Sie in Ihr Postfach",
        "link_sent_text": "Wenn diese Adresse zu einem unserer Kunden gehört, ist ein Anmeldelink "
                          "unterwegs. Er gilt einmal und {minutes} Minuten lang.",
        "confirm_title": "Anmeldung im Kundenportal",
        "confirm_text": "Drücken Sie die Schaltfläche, um sich anzumelden. Der Link gilt nur einmal.",
        "link_invalid": "Dieser Link ist nicht gültig",
        "link_invalid_text": "Er wurde schon benutzt, ist abgelaufen oder unvollständig. "
                             "Fordern Sie einen neuen an.",
        "new_link": "Neuen Link anfordern",
        "tickets": "Meine Tickets", "new_ticket": "Ticket erstellen", "number": "Nummer",
        "subject": "Betreff", "status": "Status", "updated": "Aktualisiert", "customer": "Von",
        "search": "Suche", "all_states": "Alle Status", "sort": "Sortierung", "filter": "Anzeigen",
        "newest": "Zuletzt aktualisiert", "oldest": "Am längsten unverändert", "by_number": "Nummer",
        "no_tickets": "Keine Tickets gefunden.", "page": "Seite", "previous": "Zurück",
        "next": "Weiter",
        "message": "Nachricht", "attachments": "Anhänge", "category": "Kategorie",
        "asset": "Objekt (z. B. Seriennummer)", "create": "Ticket erstellen",
        "reply": "Informationen ergänzen", "send": "Senden", "close": "Ticket schließen",
        "close_text": "Erledigt? Schließen Sie das Ticket. Eine neue Nachricht danach eröffnet "
                      "ein neues Ticket.",
        "closed_text": "Dieses Ticket ist geschlossen.", "support": "Support", "you": "Kunde",
        "organisation": "Organisation", "created": "Erstellt", "asset_short": "Objekt",
        "files_hint": "Höchstens {count} Dateien, je {size} MB.",
        "error": "Etwas ist schiefgegangen", "back": "Zurück zu meinen Tickets",
        "e400": "Das Formular konnte nicht gelesen werden. Bitte versuchen Sie es erneut.",
        "e403": "Dieses Formular ist abgelaufen oder kam nicht aus diesem Portal. Laden Sie die "
                "Seite neu und versuchen Sie es erneut.",
        "e404": "Dieses Ticket gibt es nicht, oder es gehört nicht Ihnen.",
        "e409": "Dieses Ticket ist geschlossen und nimmt keine Nachrichten mehr an. Bitte "
                "erstellen Sie ein neues Ticket.",
        "e413": "Die Dateien sind zu groß.",
        "e422": "Bitte prüfen Sie das Formular: {detail}",
        "e429": "Zu viele Anmeldeversuche. Bitte warten Sie eine Weile.",
        "e500": "Die Anfrage konnte nicht bearbeitet werden. Bitte versuchen Sie es später.",
        "e503": "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es später.",
        "need_text": "eine Nachricht braucht Text oder Anhänge",
        "need_subject": "der Betreff fehlt",
        "bad_email": "das ist keine gültige E-Mail-Adresse",
        "too_many_files": "höchstens {count} Dateien",
        "too_big_file": "jede Datei höchstens {size} MB",
        "signed_in_as": "Angemeldet als",
    },
}


def accepted_language(header: str) -> str | None:
    """The first of our languages in an Accept-Language header, by quality.

    >>> accepted_language("fr-CH, fr;q=0.9, de;q=0.8, en;q=0.7"), accepted_language("en-GB,en")
    ('de', 'en')
    >>> accepted_language("fr, *;q=0.5") is None, accepted_language("de;q=0, en")
    (True, 'en')
    """
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES and quality > 0:
            ranked.append((-quality, index, base))
    return min(ranked)[2] if ranked else None
