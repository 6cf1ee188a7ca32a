"""Reply samples by mail client: top-posted, bottom-posted and inline, in English and German."""

from __future__ import annotations

from tests.reply_samples import Sample, sample

# The notification an agent answers ends in our own footer; clients quote all of it.
_FOOTER = """\
        > --
        > Ticket T20261123.0001 · open · priority 5 · channel support
        > Reply to this mail to answer the customer. Commands on the first lines: #internal
"""

CLIENTS: list[Sample] = [
    # --- Thunderbird: "On DATE, NAME wrote:", '> ' quotes, '-- ' signatures ----------------
    sample("thunderbird-top", "Thunderbird", "en", "top", """
        Please install driver 4.2 from our download page.

        -- ␣
        Alice Agent
        ACME Support

        On 23.11.26 10:00, Anna Kunde wrote:
        > My printer prints blank pages.
        > Can you help?
        """, "Please install driver 4.2 from our download page."),
    sample("thunderbird-bottom", "Thunderbird", "en", "bottom", """
        On 23.11.26 10:00, Anna Kunde wrote:
        > My printer prints blank pages.
        > Can you help?

        Please install driver 4.2 from our download page.
        It fixes the blank pages.

        -- ␣
        Alice Agent
        ACME Support
        """, """
        Please install driver 4.2 from our download page.
        It fixes the blank pages.
        """),
    sample("thunderbird-inline", "Thunderbird", "en", "inline", """
        Hello Anna,

        On 23.11.26 10:00, Anna Kunde wrote:
        > My printer prints blank pages.

        Please install driver 4.2.

        > And the scanner does not work either.

        The scanner needs its own update, I sent you the link.

        > Thanks,
        > Anna
        """ + _FOOTER, """
        Hello Anna,

        > My printer prints blank pages.

        Please install driver 4.2.

        > And the scanner does not work either.

        The scanner needs its own update, I sent you the link.
        """),
    sample("thunderbird-quote-then-signature", "Thunderbird", "en", "top", """
        Driver 4.2 fixes it.

        On 23.11.26 10:00, Anna Kunde wrote:
        > My printer prints blank pages.

        -- ␣
        Alice Agent
        """, "Driver 4.2 fixes it."),
    sample("thunderbird-de-inline", "Thunderbird", "de", "inline", """
        Am 23.11.2026 um 10:00 schrieb Anna Kunde:
        > Mein Drucker druckt leere Seiten.
        Bitte installieren Sie Treiber 4.2.
        > Und der Scanner geht auch nicht.
        Der Scanner braucht ein eigenes Update.
        >
        > Viele Grüße
        > Anna
        """, """
        > Mein Drucker druckt leere Seiten.
        Bitte installieren Sie Treiber 4.2.
        > Und der Scanner geht auch nicht.
        Der Scanner braucht ein eigenes Update.
        """),
    sample("thunderbird-name-only-header-bottom", "Thunderbird", "en", "inline", """
        Anna Kunde wrote:
        > Is the update out?

        Yes, since this morning.
        """, """
        Anna Kunde wrote:
        > Is the update out?

        Yes, since this morning.
        """),
    # --- Apple Mail (macOS): header unquoted or quoted, empty quoted lines as '> ' ---------
    sample("apple-mail-top", "Apple Mail", "en", "top", """
        The replacement ships tomorrow.

        Alice

        > On 23. Nov 2026, at 10:00, Anna Kunde <anna@acme.example> wrote:
        > ␣
        > Where is my replacement?
        > ␣
        > Anna
        """, "The replacement ships tomorrow.\n\nAlice"),
    sample("apple-mail-bottom", "Apple Mail", "en", "bottom", """
        On 23. Nov 2026, at 10:00, Anna Kunde <anna@acme.example> wrote:
        ␣
        > Where is my replacement?

        It ships tomorrow, tracking number follows.
        """, "It ships tomorrow, tracking number follows."),
    sample("apple-mail-inline", "Apple Mail", "de", "inline", """
        > Am 23.11.2026 um 10:00 schrieb Anna Kunde <anna@acme.example>:
        > ␣
        > Wo bleibt mein Ersatzgerät?

        Es geht morgen raus.

        > Und bekomme ich eine Rechnung?

        Ja, per Post.

        Viele Grüße
        Alice
        """, """
        > Wo bleibt mein Ersatzgerät?

        Es geht morgen raus.

        > Und bekomme ich eine Rechnung?

        Ja, per Post.

        Viele Grüße
        Alice
        """),
    # --- Outlook: no '>' at all, a header block below a rule ------------------------------
    sample("outlook-top", "Outlook", "en", "top", """
        Hi Anna,

        the replacement ships tomorrow.

        Best regards
        Alice

        ________________________________
        From: Anna Kunde <anna@acme.example>
        Sent: Monday, November 23, 2026 10:00 AM
        To: ACME Support <support@example.com>
        Subject: Where is my replacement?

        Hello,
        where is my replacement?
        """, """
        Hi Anna,

        the replacement ships tomorrow.

        Best regards
        Alice
        """),
    sample("outlook-original-message", "Outlook", "en", "top", """
        Done, the account is unlocked.

        -----Original Message-----
        From: Anna Kunde [mailto:anna@acme.example]
        Sent: Monday, November 23, 2026 10:00 AM
        To: ACME Support
        Subject: Account locked

        My account is locked.
        """, "Done, the account is unlocked."),
    sample("outlook-bold-fields", "Outlook", "en", "top", """
        Done.

        *From:* Anna Kunde <anna@acme.example>
        *Sent:* Monday, November 23, 2026 10:00 AM
        *To:* ACME Support <support@example.com>
        *Subject:* Account locked
        """, "Done."),
    sample("outlook-de", "Outlook", "de", "top", """
        Erledigt, das Konto ist entsperrt.

        Mit freundlichen Grüßen
        Alice Agent

        -----Ursprüngliche Nachricht-----
        Von: Anna Kunde <anna@acme.example>
        Gesendet: Montag, 23. November 2026 10:00
        An: ACME Support <support@example.com>
        Betreff: Konto gesperrt

        Mein Konto ist gesperrt.
        """, """
        Erledigt, das Konto ist entsperrt.

        Mit freundlichen Grüßen
        Alice Agent
        """),
    sample("outlook-de-variant", "Outlook", "de", "top", """
        Erledigt.

        ----- Ursprüngliche Nachricht -----
        Von: Anna Kunde
        An: ACME Support
        Datum: 23.11.2026 10:00
        Betreff: Konto gesperrt
        """, "Erledigt."),
    sample("outlook-de-ascii", "Outlook", "de", "top", """
        Erledigt.

        -----Urspruengliche Nachricht-----
        Mein Konto ist gesperrt.
        """, "Erledigt."),
    sample("outlook-mac-de", "Outlook", "de", "top", """
        Erledigt.

        Von: Anna Kunde <anna@acme.example>
        Datum: Montag, 23. November 2026 um 10:00
        An: ACME Support <support@example.com>
        Betreff: Konto gesperrt
        """, "Erledigt."),
    sample("outlook-prefixed-bottom", "Outlook", "en", "bottom", """
        > -----Original Message-----
        > From: Anna Kunde <anna@acme.example>
        > Sent: Monday, November 23, 2026 10:00 AM
        > To: ACME Support <support@example.com>
        > Subject: Account locked
        >␣
        > My account is locked.

        Unlocked now.

        Alice
        """, "Unlocked now.\n\nAlice"),
    sample("outlook-prefixed-inline", "Outlook", "en", "inline", """
        > -----Original Message-----
        > From: Anna Kunde <anna@acme.example>
        > Sent: Monday, November 23, 2026 10:00 AM
        > To: ACME Support <support@example.com>
        > Subject: Account locked
        >␣
        > My account is locked.

        Unlocked now.

        > And my password expired.

        Reset it on the portal.

        > Anna
        """, """
        > My account is locked.

        Unlocked now.

        > And my password expired.

        Reset it on the portal.
        """),
    # --- Gmail: header above a blank line and '> ' quotes, folded at 78 characters ---------
    sample("gmail-top", "Gmail", "en", "top", """
        Hi Anna, the invoice is attached.

        On Mon, Nov 23, 2026 at 10:00 AM Anna Kunde <anna@acme.example> wrote:

        > Please send me the invoice.
        >
        """ + _FOOTER, "Hi Anna, the invoice is attached."),
    sample("gmail-bottom", "Gmail", "en", "bottom", """
        On Mon, Nov 23, 2026 at 10:00 AM Anna Kunde <anna@acme.example> wrote:

        > Please send me the invoice.
        >
        """ + _FOOTER + """
        The invoice is attached.

        Alice
        """, "The invoice is attached.\n\nAlice"),
    sample("gmail-inline", "Gmail", "en", "inline", """
        On Mon, Nov 23, 2026 at 10:00 AM Anna Kunde <anna@acme.example> wrote:

        > Please send me the invoice.
        >

        Attached.

        > Also, can I pay by card?
        >

        Yes, on the portal.

        > Thanks
        """ + _FOOTER, """
        > Please send me the invoice.

        Attached.

        > Also, can I pay by card?

        Yes, on the portal.
        """),
    sample("gmail-folded-header", "Gmail", "en", "top", """
        Attached.

        On Mon, Nov 23, 2026 at 10:00 AM Anna Kunde-Schmidt <anna.kunde-schmidt@acme.example>
        wrote:

        > Please send me the invoice.
        """, "Attached."),
    sample("gmail-folded-three-lines", "Gmail", "en", "bottom", """
        On Monday, November 23, 2026 at 10:00:00 AM UTC+1,
        Anna Kunde-Schmidt from the accounting department
        <anna.kunde-schmidt@accounting.acme.example> wrote:

        > Please send me the invoice.

        Attached.
        """, "Attached."),
    sample("gmail-no-space-before-wrote", "Gmail", "en", "top", """
        Attached.

        On Mon, Nov 23, 2026 at 10:00 AM Anna Kunde <anna@acme.example>wrote:
        > Please send me the invoice.
        """, "Attached."),
    sample("gmail-de-folded", "Gmail", "de", "top", """
        Anbei die Rechnung.

        Am Mo., 23. Nov. 2026 um 10:00 Uhr schrieb Anna Kunde <
        anna@acme.example>:

        > Bitte schicken Sie mir die Rechnung.
        """, "Anbei die Rechnung."),
    # --- iPhone (iOS Mail): "Sent from my iPhone", quoted header -------------------------
    sample("iphone-top", "iPhone", "en", "top", """
        Ships tomorrow.

        Sent from my iPhone

        > On 23 Nov 2026, at 10:00, Anna Kunde <anna@acme.example> wrote:
        >␣
        > Where is my replacement?
        """, "Ships tomorrow."),
    sample("iphone-de-top", "iPhone", "de", "top", """
        Geht morgen raus.

        Von meinem iPhone gesendet

        > Am 23.11.2026 um 10:00 schrieb Anna Kunde <anna@acme.example>:
        >␣
        > Wo bleibt mein Ersatzgerät?
        """, "Geht morgen raus."),
    sample("iphone-bottom", "iPhone", "en", "bottom", """
        > On 23 Nov 2026, at 10:00, Anna Kunde <anna@acme.example> wrote:
        >␣
        > Where is my replacement?

        Ships tomorrow.

        Sent from my iPhone
        """, "Ships tomorrow."),
    sample("iphone-inline", "iPhone", "en", "inline", """
        > On 23 Nov 2026, at 10:00, Anna Kunde <anna@acme.example> wrote:
        >␣
        > Where is my replacement?

        Ships tomorrow.

        > Do I need to send the old one back?

        No, keep it.

        Sent from my iPhone
        """, """
        > Where is my replacement?

        Ships tomorrow.

        > Do I need to send the old one back?

        No, keep it.
        """),
    # --- Yahoo: indented header over unmarked text, or an Original Message block ----------
    sample("yahoo-top", "Yahoo", "en", "top", """
        Ships tomorrow.

        Sent from Yahoo Mail on Android

            On Monday, November 23, 2026, 10:00:00 AM GMT+1, Anna Kunde <anna@acme.example> wrote:


        Where is my replacement?
        """, "Ships tomorrow."),
    sample("yahoo-original-message", "Yahoo", "en", "top", """
        Ships tomorrow.

        ----- Original Message -----
        From: Anna Kunde <anna@acme.example>
        To: ACME Support <support@example.com>
        Sent: Monday, November 23, 2026 10:00 AM
        Subject: Where is my replacement?

        Where is my replacement?
        """, "Ships tomorrow."),
    sample("yahoo-bottom", "Yahoo", "en", "bottom", """
        On Monday, November 23, 2026, 10:00:00 AM GMT+1, Anna Kunde <anna@acme.example> wrote:

        > Where is my replacement?

        Ships tomorrow.
        """, "Ships tomorrow."),
    sample("yahoo-inline", "Yahoo", "en", "inline", """
        On Monday, November 23, 2026, 10:00:00 AM GMT+1, Anna Kunde <anna@acme.example> wrote:

        > Where is my replacement?

        Ships tomorrow.

        > Which carrier?

        DHL.

        > Anna
        """, """
        > Where is my replacement?

        Ships tomorrow.

        > Which carrier?

        DHL.
        """),
    # --- AOL: Original Message with From/To/Sent/Subject --------------------------------
    sample("aol-top", "AOL", "en", "top", """
        Ships tomorrow.



        -----Original Message-----
        From: Anna Kunde <anna@acme.example>
        To: support <support@example.com>
        Sent: Mon, Nov 23, 2026 10:00 am
        Subject: Where is my replacement?

        Where is my replacement?
        """, "Ships tomorrow."),
    sample("aol-bottom", "AOL", "en", "bottom", """
        On Monday, November 23, 2026, 10:00 AM, Anna Kunde <anna@acme.example> wrote:
        > Where is my replacement?

        Ships tomorrow.

        Sent from the all new AOL app for iOS
        """, "Ships tomorrow."),
    sample("aol-classic-inline", "AOL", "en", "inline", """
        In a message dated 11/23/2026 10:00:00 AM Eastern Standard Time, anna@acme.example writes:

        > Where is my replacement?
        Ships tomorrow.
        > Which carrier?
        DHL.
        """, """
        > Where is my replacement?
        Ships tomorrow.
        > Which carrier?
        DHL.
        """),
    # --- nothing of the agent's: '' (the caller keeps the whole mail as a note) ----------
    sample("only-quote", "Gmail", "en", "none", """
        On Mon, Nov 23, 2026 at 10:00 AM Anna Kunde <anna@acme.example> wrote:

        > Please send me the invoice.
        """, ""),
    sample("only-signature-and-quote", "Thunderbird", "en", "none", """

        -- ␣
        Alice Agent

        On 23.11.26 10:00, Anna Kunde wrote:
        > My printer prints blank pages.
        """, ""),
    sample("only-outlook-block", "Outlook", "en", "none", """
        ________________________________
        From: Anna Kunde <anna@acme.example>
        Sent: Monday, November 23, 2026 10:00 AM
        To: ACME Support <support@example.com>
        Subject: Where is my replacement?
        """, ""),
    # --- the agent's own words that only look like history --------------------------------
    sample("agent-quotes-a-vendor", "Thunderbird", "en", "inline", """
        The vendor wrote:
        > The fix ships on Monday.

        So you will have it next week.
        """, """
        The vendor wrote:
        > The fix ships on Monday.

        So you will have it next week.
        """),
    sample("agent-lists-headers", "Gmail", "en", "top", """
        Logged:
        From: billing@example.com
        Date: today

        Check your spam folder.
        """, """
        Logged:
        From: billing@example.com
        Date: today

        Check your spam folder.
        """),
    sample("agent-says-on-monday", "Gmail", "en", "top", """
        On Monday we ship the fix.
        I wrote to the vendor about it: they confirmed.

        On Mon, Nov 23, 2026 at 10:00 AM Anna Kunde <anna@acme.example> wrote:
        > When is it fixed?
        """, """
        On Monday we ship the fix.
        I wrote to the vendor about it: they confirmed.
        """),
]
