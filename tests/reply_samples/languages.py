"""Reply samples by language: each client's quote header and Outlook's header block in it."""

from __future__ import annotations

from tests.reply_samples import Sample


def _top(name: str, client: str, language: str, answer: str, header: str, quoted: str) -> Sample:
    """A top-posted reply over a '> ' quote under the given header line(s)."""
    text = f"{answer}\n\n{header}\n" + "".join(f"> {line}\n" for line in quoted.split("\n"))
    return Sample(name, client, language, "top", text, answer)


def _bottom(name: str, client: str, language: str, answer: str, header: str, quoted: str) -> Sample:
    """A bottom-posted reply: the header, the quote, then the answer."""
    text = f"{header}\n" + "".join(f"> {line}\n" for line in quoted.split("\n")) + f"\n{answer}\n"
    return Sample(name, client, language, "bottom", text, answer)


def _outlook(name: str, language: str, answer: str, block: str) -> Sample:
    """A top-posted Outlook reply over its header block without '>' (and the old text)."""
    return Sample(name, "Outlook", language, "top", f"{answer}\n\n{block}\n\nOld text.\n", answer)


A = "Anna Kunde <anna@acme.example>"

LANGUAGES: list[Sample] = [
    # English, German, French, Spanish, Dutch, Italian (known before)
    _top("gmail-fr", "Gmail", "fr", "La facture est jointe.",
         f"Le lun. 23 nov. 2026 à 10:00, {A} a écrit :", "Envoyez-moi la facture."),
    _bottom("thunderbird-fr", "Thunderbird", "fr", "La facture est jointe.",
            "Le 23/11/2026 à 10:00, Anna Kunde a écrit\u00a0:", "Envoyez-moi la facture."),
    _outlook("outlook-fr", "fr", "La facture est jointe.",
             f"De : {A}\nEnvoyé : lundi 23 novembre 2026 10:00\nÀ : ACME Support\nObjet : Facture"),
    _top("gmail-es", "Gmail", "es", "La factura va adjunta.",
         "El lun, 23 nov 2026 a las 10:00, Anna Kunde (<anna@acme.example>) escribió:",
         "Envíeme la factura."),
    _outlook("outlook-es", "es", "La factura va adjunta.",
             f"De: {A}\nEnviado: lunes, 23 de noviembre de 2026 10:00\nPara: ACME Support\n"
             "Asunto: Factura"),
    _top("gmail-nl", "Gmail", "nl", "De factuur zit in de bijlage.",
         f"Op ma 23 nov 2026 om 10:00 schreef {A}:", "Stuur me de factuur."),
    _outlook("outlook-nl", "nl", "De factuur zit in de bijlage.",
             f"Van: {A}\nVerzonden: maandag 23 november 2026 10:00\nAan: ACME Support\n"
             "Onderwerp: Factuur"),
    _top("gmail-it", "Gmail", "it", "La fattura è in allegato.",
         f"Il giorno lun 23 nov 2026 alle ore 10:00 {A} ha scritto:", "Mi mandi la fattura."),
    _outlook("outlook-it", "it", "La fattura è in allegato.",
             f"Da: {A}\nInviato: lunedì 23 novembre 2026 10:00\nA: ACME Support\nOggetto: Fattura"),
    _bottom("gmail-de", "Gmail", "de", "Anbei die Rechnung.",
            f"Am Mo., 23. Nov. 2026 um 10:00 Uhr schrieb {A}:", "Bitte die Rechnung."),
    # Danish / Norwegian
    _top("gmail-da", "Gmail", "da", "Fakturaen er vedhæftet.",
         f"Den man. 23. nov. 2026 kl. 10.00 skrev {A}:", "Send mig venligst fakturaen."),
    _bottom("apple-da", "Apple Mail", "da", "Fakturaen er vedhæftet.",
            f"Den 23. nov. 2026 kl. 10.00 skrev {A}:", "Send mig venligst fakturaen."),
    _outlook("outlook-da", "da", "Fakturaen er vedhæftet.",
             f"-----Oprindelig meddelelse-----\nFra: {A}\nSendt: 23. november 2026 10:00\n"
             "Til: ACME Support\nEmne: Faktura"),
    _outlook("outlook-da-fields", "da", "Fakturaen er vedhæftet.",
             f"Fra: {A}\nSendt: mandag den 23. november 2026 10:00\nTil: ACME Support\nEmne: Faktura"),
    _top("gmail-no", "Gmail", "no", "Fakturaen ligger vedlagt.",
         f"man. 23. nov. 2026 kl. 10:00 skrev {A}:", "Send meg fakturaen."),
    _outlook("outlook-no", "no", "Fakturaen ligger vedlagt.",
             f"-----Opprinnelig melding-----\nFra: {A}\nSendt: mandag 23. november 2026 10:00\n"
             "Til: ACME Support\nEmne: Faktura"),
    # Swedish
    _top("gmail-sv", "Gmail", "sv", "Fakturan är bifogad.",
         f"Den mån 23 nov. 2026 kl 10:00 skrev {A}:", "Skicka fakturan."),
    _bottom("apple-sv", "Apple Mail", "sv", "Fakturan är bifogad.",
            f"23 nov. 2026 kl. 10:00 skrev {A}:", "Skicka fakturan."),
    _outlook("outlook-sv", "sv", "Fakturan är bifogad.",
             f"Från: {A}\nSkickat: den 23 november 2026 10:00\nTill: ACME Support\nÄmne: Faktura"),
    # Polish
    _top("webmail-pl", "Thunderbird", "pl", "Faktura w załączniku.",
         f"Dnia 23.11.2026 o 10:00 {A} napisał(a):", "Proszę o fakturę."),
    _bottom("gmail-pl", "Gmail", "pl", "Faktura w załączniku.",
            f"pon., 23 lis 2026 o 10:00 {A} napisał(a):", "Proszę o fakturę."),
    _top("thunderbird-pl", "Thunderbird", "pl", "Faktura w załączniku.",
         "W dniu 23.11.2026 o 10:00, Anna Kunde pisze:", "Proszę o fakturę."),
    _outlook("outlook-pl", "pl", "Faktura w załączniku.",
             f"-----Wiadomość oryginalna-----\nOd: {A}\nWysłano: poniedziałek, 23 listopada 2026 10:00\n"
             "Do: ACME Support\nTemat: Faktura"),
    # Japanese
    _top("gmail-ja", "Gmail", "ja", "請求書を添付しました。",
         f"2026年11月23日(月) 10:00 {A}:", "請求書を送ってください。"),
    _bottom("apple-ja", "Apple Mail", "ja", "請求書を添付しました。",
            f"2026/11/23 10:00、{A}のメール:", "請求書を送ってください。"),
    _outlook("outlook-ja", "ja", "請求書を添付しました。",
             f"差出人: {A}\n送信日時: 2026年11月23日 10:00\n宛先: ACME Support\n件名: 請求書"),
    # Russian
    _top("apple-ru", "Apple Mail", "ru", "Счёт во вложении.",
         f"23 нояб. 2026 г., в 10:00, пользователь {A} написал:", "Пришлите, пожалуйста, счёт."),
    _bottom("gmail-ru", "Gmail", "ru", "Счёт во вложении.",
            f"пн, 23 нояб. 2026 г. в 10:00, {A}:", "Пришлите, пожалуйста, счёт."),
    _top("thunderbird-ru", "Thunderbird", "ru", "Счёт во вложении.",
         "23.11.2026 10:00, Anna Kunde пишет:", "Пришлите, пожалуйста, счёт."),
    _outlook("outlook-ru", "ru", "Счёт во вложении.",
             f"-----Исходное сообщение-----\nОт: {A}\nОтправлено: 23 ноября 2026 г. 10:00\n"
             "Кому: ACME Support\nТема: Счёт"),
    # Portuguese
    _top("gmail-pt-br", "Gmail", "pt", "A fatura está em anexo.",
         f"Em seg., 23 de nov. de 2026 às 10:00, {A} escreveu:", "Envie-me a fatura."),
    _bottom("gmail-pt-pt", "Gmail", "pt", "A fatura está em anexo.",
            f"{A} escreveu (segunda, 23/11/2026 à(s) 10:00):", "Envie-me a fatura."),
    _outlook("outlook-pt", "pt", "A fatura está em anexo.",
             f"De: {A}\nEnviado: segunda-feira, 23 de novembro de 2026 10:00\nPara: ACME Support\n"
             "Assunto: Fatura"),
    # Czech
    _top("gmail-cs", "Gmail", "cs", "Fakturu posílám v příloze.",
         f"po 23. 11. 2026 v 10:00 odesílatel {A} napsal:", "Pošlete mi fakturu."),
    _bottom("thunderbird-cs", "Thunderbird", "cs", "Fakturu posílám v příloze.",
            "Dne 23. 11. 2026 v 10:00 Anna Kunde napsal(a):", "Pošlete mi fakturu."),
    _outlook("outlook-cs", "cs", "Fakturu posílám v příloze.",
             f"Od: {A}\nOdesláno: pondělí 23. listopadu 2026 10:00\nKomu: ACME Support\n"
             "Předmět: Faktura"),
    # Finnish
    _top("gmail-fi", "Gmail", "fi", "Lasku on liitteenä.",
         "ma 23.11.2026 klo 10.00 Anna Kunde (anna@acme.example) kirjoitti:", "Lähettäkää lasku."),
    _bottom("thunderbird-fi", "Thunderbird", "fi", "Lasku on liitteenä.",
            "Anna Kunde kirjoitti 23.11.2026 klo 10.00:", "Lähettäkää lasku."),
    _outlook("outlook-fi", "fi", "Lasku on liitteenä.",
             f"Lähettäjä: {A}\nLähetetty: maanantai 23. marraskuuta 2026 10.00\n"
             "Vastaanottaja: ACME Support\nAihe: Lasku"),
    # Turkish
    _top("gmail-tr", "Gmail", "tr", "Fatura ektedir.",
         f"{A}, 23 Kas 2026 Pzt, 10:00 tarihinde şunu yazdı:", "Faturayı gönderir misiniz?"),
    _outlook("outlook-tr", "tr", "Fatura ektedir.",
             f"Kimden: {A}\nGönderildi: 23 Kasım 2026 Pazartesi 10:00\nKime: ACME Support\n"
             "Konu: Fatura"),
    # Chinese
    _top("gmail-zh", "Gmail", "zh", "发票已附上。",
         f"{A} 于2026年11月23日周一 10:00写道：", "请把发票发给我。"),
    _bottom("gmail-zh-tw", "Gmail", "zh", "發票已附上。",
            f"{A} 於 2026年11月23日 週一 上午10:00寫道：", "請把發票寄給我。"),
    _outlook("outlook-zh", "zh", "发票已附上。",
             f"发件人: {A}\n发送时间: 2026年11月23日 10:00\n收件人: ACME Support\n主题: 发票"),
    _outlook("qq-zh", "zh", "发票已附上。",
             "------------------ 原始邮件 ------------------\n发件人: \"Anna\"<anna@acme.example>;\n"
             "发送时间: 2026年11月23日(星期一) 上午10:00\n收件人: \"support\"<support@example.com>;\n"
             "主题: 发票"),
    # Korean
    _top("gmail-ko", "Gmail", "ko", "청구서를 첨부했습니다.",
         f"2026년 11월 23일 (월) 오전 10:00, {A}님이 작성:", "청구서를 보내 주세요."),
    _outlook("outlook-ko", "ko", "청구서를 첨부했습니다.",
             f"보낸 사람: {A}\n보낸 날짜: 2026년 11월 23일 월요일 오전 10:00\n받는 사람: ACME Support\n"
             "제목: 청구서"),
]


def _unmarked(top: Sample) -> Sample:
    """The same top-posted reply with the quote not marked by '>' (HTML turned into text)."""
    text = top.text.replace("\n> ", "\n")
    return Sample(f"{top.name}-unmarked", top.client, top.language, "top", text, top.expected)


LANGUAGES += [_unmarked(s) for s in list(LANGUAGES) if s.style == "top" and s.client != "Outlook"]
