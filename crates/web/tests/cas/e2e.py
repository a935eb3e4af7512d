#!/usr/bin/env python3
"""The CAS story of issue 14, played over HTTP against a running `annuaire`
with python-cas, a CAS client nobody here wrote, as the services' side and
`requests` as the teacher's browser. Every validation answer in XML is checked
against the CAS 3.0 schema (cas3.xsd). Called by tests/cas.rs with one JSON
argument; prints the tickets each service validated (for the single-logout
check) as JSON on stdout; any failed check exits 1 with the reason.
"""

import csv
import email
import email.policy
import json
import re
import sys
import time
import urllib.parse

import requests
from cas import CASClient
from lxml import etree

CAS_NS = "{http://www.yale.edu/tp/cas}"
NEW_PASSWORD = "trois pommes et deux poires"


def check(condition, what, response=None):
    if not condition:
        detail = ""
        if response is not None:
            detail = f"\n  HTTP {response.status_code} {response.headers.get('Location', '')}\n  {response.text[:800]}"
        sys.exit(f"ÉCHEC : {what}{detail}")


def read_result(path):
    """login -> password, from the import's result file (UTF-8 BOM, ';')."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    header = rows[0]
    login = next(i for i, h in enumerate(header) if h.startswith("Nom utilisateur"))
    password = next(i for i, h in enumerate(header) if h.startswith("Mot de passe"))
    return {row[login]: row[password] for row in rows[1:] if row}


def hidden(page, name):
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    check(found is not None, f"champ caché {name} absent de la page")
    return found.group(1)


def post_form(browser, url, page, fields):
    data = dict(fields)
    data["csrf"] = hidden(page, "csrf")
    return browser.post(url, data=data, allow_redirects=False)


def ticket_of(response, service):
    check(response.status_code == 303, "redirection vers le service attendue", response)
    location = response.headers["Location"]
    check(location.startswith(service), f"redirection vers {location}, pas vers {service}", response)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    check("ticket" in query and query["ticket"][0].startswith("ST-"), f"pas de ticket dans {location}")
    return query["ticket"][0]


def sso_ticket(browser, client, service):
    """A ticket from the single sign-on session: no form, straight back."""
    return ticket_of(browser.get(client.get_login_url(), allow_redirects=False), service)


def xml_answer(schema, url, params):
    answer = requests.get(url, params=params)
    check(answer.status_code == 200, f"{url} répond {answer.status_code}", answer)
    document = etree.fromstring(answer.content)
    check(schema.validate(document), f"{url} : réponse hors du schéma CAS 3.0 : {schema.error_log}\n{answer.text}")
    return document


def failure_code(document):
    failure = document.find(f"{CAS_NS}authenticationFailure")
    return None if failure is None else failure.get("code")


def main():
    cfg = json.loads(sys.argv[1])
    cas_url = cfg["cas_url"]
    service_a, service_b = cfg["service_a"], cfg["service_b"]
    schema = etree.XMLSchema(etree.parse(cfg["xsd"]))
    passwords = read_result(cfg["result_file"])
    teacher = cfg["teacher"]
    a = CASClient(version=3, service_url=service_a, server_url=cas_url)
    b = CASClient(version=3, service_url=service_b, server_url=cas_url)
    validated = {"a": [], "b": [], "portal": []}
    browser = requests.Session()

    # Service A sends the teacher to the sign-in page.
    form = browser.get(a.get_login_url(), allow_redirects=False)
    check(form.status_code == 200 and 'name="username"' in form.text, "formulaire de connexion", form)
    wrong = post_form(browser, cas_url + "login", form.text,
                      {"username": teacher, "password": "pas-le-bon", "service": service_a})
    check(wrong.status_code == 401 and "Identifiant ou mot de passe incorrect" in wrong.text,
          "un mauvais mot de passe est refusé sans dire lequel des deux est faux", wrong)

    # The password of the result file opens the first-sign-in change.
    change = post_form(browser, cas_url + "login", wrong.text,
                       {"username": teacher, "password": passwords[teacher], "service": service_a})
    check(change.status_code == 200 and 'name="new_password"' in change.text
          and 'name="confirm_password"' in change.text, "formulaire de changement du mot de passe remis", change)
    short = post_form(browser, cas_url + "mot-de-passe", change.text,
                      {"new_password": "court", "confirm_password": "court", "service": service_a})
    check(short.status_code == 422 and "au moins 12" in short.text, "règle du mot de passe affichée", short)
    done = post_form(browser, cas_url + "mot-de-passe", short.text,
                     {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "service": service_a})
    ticket_a = ticket_of(done, service_a)

    # Service A validates with python-cas and reads the attributes.
    user, attributes, _ = a.verify_ticket(ticket_a)
    check(user == teacher, f"python-cas lit l'utilisateur {user!r}, attendu {teacher!r}")
    check(attributes.get("lastName") == cfg["last_name"], f"attributs lus : {attributes}")
    check(attributes.get("ENTPersonProfils") == "National_ENS", f"profil SDET : {attributes}")
    check(attributes.get("isFromNewLogin") == "true", f"isFromNewLogin : {attributes}")
    check("email" not in attributes, f"un attribut non accordé est transmis : {attributes}")
    validated["a"].append(ticket_a)

    # A replayed ticket is refused (python-cas, then the raw answer in the schema).
    check(a.verify_ticket(ticket_a)[0] is None, "un ticket rejoué est refusé")
    replay = xml_answer(schema, cas_url + "p3/serviceValidate", {"ticket": ticket_a, "service": service_a})
    check(failure_code(replay) == "INVALID_TICKET", "code INVALID_TICKET pour un ticket rejoué")

    # Service B: a ticket without a new sign-in (single sign-on).
    ticket_b = sso_ticket(browser, b, service_b)
    user_b, attributes_b, _ = b.verify_ticket(ticket_b)
    check(user_b == teacher and attributes_b.get("isFromNewLogin") == "false", f"service B : {user_b} {attributes_b}")
    validated["b"].append(ticket_b)

    # A ticket of service A presented by service B.
    stolen = sso_ticket(browser, a, service_a)
    other = xml_answer(schema, cas_url + "p3/serviceValidate", {"ticket": stolen, "service": service_b})
    check(failure_code(other) == "INVALID_SERVICE", "code INVALID_SERVICE pour le ticket d'un autre service")
    check(a.verify_ticket(stolen)[0] is None, "le ticket présenté par un autre service est consommé")

    # An expired ticket.
    late = sso_ticket(browser, a, service_a)
    time.sleep(cfg["ticket_seconds"] + 1)
    check(a.verify_ticket(late)[0] is None, "un ticket expiré est refusé")

    # The three formats and versions of a successful validation.
    p3_ticket = sso_ticket(browser, a, service_a)
    success = xml_answer(schema, cas_url + "p3/serviceValidate", {"ticket": p3_ticket, "service": service_a})
    check(success.find(f"{CAS_NS}authenticationSuccess/{CAS_NS}user").text == teacher, "p3/serviceValidate : utilisateur")
    validated["a"].append(p3_ticket)
    v2_ticket = sso_ticket(browser, a, service_a)
    v2 = xml_answer(schema, cas_url + "serviceValidate", {"ticket": v2_ticket, "service": service_a})
    check(v2.find(f"{CAS_NS}authenticationSuccess/{CAS_NS}attributes") is None, "CAS 2.0 : pas d'attributs")
    validated["a"].append(v2_ticket)
    v1_ticket = sso_ticket(browser, a, service_a)
    v1 = requests.get(cas_url + "validate", params={"ticket": v1_ticket, "service": service_a})
    check(v1.text == f"yes\n{teacher}\n", f"CAS 1.0 : {v1.text!r}")
    validated["a"].append(v1_ticket)
    json_ticket = sso_ticket(browser, a, service_a)
    as_json = requests.get(cas_url + "p3/serviceValidate",
                           params={"ticket": json_ticket, "service": service_a, "format": "JSON"}).json()
    check(as_json["serviceResponse"]["authenticationSuccess"]["user"] == teacher, f"format JSON : {as_json}")
    validated["a"].append(json_ticket)
    missing = xml_answer(schema, cas_url + "p3/serviceValidate", {"service": service_a})
    check(failure_code(missing) == "INVALID_REQUEST", "code INVALID_REQUEST sans ticket")

    # A portal allowed to proxy: its callback receives a PGT, the answer its IOU;
    # python-cas asks /proxy for a ticket to service A, validated by proxyValidate.
    portal_url = cfg["portal"]
    portal = CASClient(version=3, service_url=portal_url, server_url=cas_url, proxy_callback=portal_url + "rappel")
    portal_ticket = sso_ticket(browser, portal, portal_url)
    user_p, _, pgtiou = portal.verify_ticket(portal_ticket)
    check(user_p == teacher and pgtiou and pgtiou.startswith("PGTIOU-"), f"portail : {user_p} {pgtiou}")
    validated["portal"].append(portal_ticket)
    pgt = requests.get(portal_url + "pgt", params={"iou": pgtiou}).text
    check(pgt.startswith("PGT-"), f"le rappel du portail n'a pas reçu de PGT : {pgt!r}")
    target = CASClient(version=3, service_url=service_a, server_url=cas_url)
    pt = target.get_proxy_ticket(pgt)
    check(pt.startswith("PT-"), f"ticket de proxy : {pt}")
    refused_pt = xml_answer(schema, cas_url + "p3/serviceValidate", {"ticket": pt, "service": service_a})
    check(failure_code(refused_pt) == "INVALID_TICKET_SPEC", "serviceValidate refuse un ticket de proxy")
    pt = target.get_proxy_ticket(pgt)
    proxied = xml_answer(schema, cas_url + "p3/proxyValidate", {"ticket": pt, "service": service_a})
    proxies = [p.text for p in proxied.iter(f"{CAS_NS}proxy")]
    check(proxies == [portal_url + "rappel"], f"chaîne des proxys : {proxies}")
    validated["a"].append(pt)
    target.url_suffix = "p3/proxyValidate"
    pt = target.get_proxy_ticket(pgt)
    user_t, _, _ = target.verify_ticket(pt)
    check(user_t == teacher, f"python-cas valide le ticket de proxy : {user_t}")
    validated["a"].append(pt)
    pirate = CASClient(version=3, service_url="https://pirate.test/", server_url=cas_url)
    try:
        pirate.get_proxy_ticket(pgt)
        check(False, "un ticket de proxy pour un service inconnu")
    except Exception:
        pass
    denied = etree.fromstring(requests.get(pirate.get_proxy_url(pgt)).content)
    check(schema.validate(denied), f"réponse de /proxy hors du schéma : {schema.error_log}")
    failure = denied.find(f"{CAS_NS}proxyFailure")
    check(failure is not None and failure.get("code") == "UNAUTHORIZED_SERVICE", "UNAUTHORIZED_SERVICE pour un service inconnu")

    # An unknown service is refused with a page saying so.
    unknown = browser.get(cas_url + "login", params={"service": "https://pirate.test/"}, allow_redirects=False)
    check(unknown.status_code == 403 and "enregistré" in unknown.text, "service inconnu refusé", unknown)

    # An expired account and an address out of range are refused.
    for login, what in [(cfg["expired"], "compte expiré"), (cfg["outside"], "adresse hors des plages")]:
        other_browser = requests.Session()
        page = other_browser.get(a.get_login_url(), allow_redirects=False)
        refused = post_form(other_browser, cas_url + "login", page.text,
                            {"username": login, "password": passwords[login], "service": service_a})
        check(refused.status_code == 401 and "Connexion refusée" in refused.text, f"{what} refusé", refused)
        check("ticket=" not in refused.headers.get("Location", ""), f"{what} : aucun ticket")

    # Logout: back to service A (registered), the session is over.
    out = browser.get(a.get_logout_url(redirect_url=service_a), allow_redirects=False)
    check(out.status_code == 303 and out.headers["Location"] == service_a, "retour au service après déconnexion", out)
    again = browser.get(a.get_login_url(), allow_redirects=False)
    check(again.status_code == 200 and 'name="username"' in again.text, "plus de session après déconnexion", again)

    # Mot de passe oublié: the link arrives by mail, opens the change form once.
    forgetful = requests.Session()
    page = forgetful.get(cas_url + "mot-de-passe-oublie")
    sent = post_form(forgetful, cas_url + "mot-de-passe-oublie", page.text, {"username": teacher})
    check(sent.status_code == 200 and "Si ce compte a une adresse" in sent.text, "demande de lien", sent)
    link = mailed_link(cfg["outbox"])
    button = forgetful.get(link)
    check(button.status_code == 200 and 'name="jeton"' in button.text, "page du lien", button)
    change = post_form(forgetful, cas_url + "reinitialisation", button.text, {"jeton": hidden(button.text, "jeton")})
    check(change.status_code == 200 and 'name="new_password"' in change.text, "le lien ouvre le changement", change)
    chosen = "une phrase choisie après un oubli"
    saved = post_form(forgetful, cas_url + "mot-de-passe", change.text,
                      {"new_password": chosen, "confirm_password": chosen})
    check(saved.status_code == 200 and "Mot de passe enregistré" in saved.text, "nouveau mot de passe enregistré", saved)
    button = forgetful.get(link)
    again = post_form(forgetful, cas_url + "reinitialisation", button.text, {"jeton": hidden(button.text, "jeton")})
    check(again.status_code == 410 and "Lien expiré" in again.text, "un lien ne sert qu'une fois", again)
    fresh = requests.Session()
    form = fresh.get(a.get_login_url(), allow_redirects=False)
    signed = post_form(fresh, cas_url + "login", form.text, {"username": teacher, "password": chosen, "service": service_a})
    check(a.verify_ticket(ticket_of(signed, service_a))[0] == teacher, "connexion avec le mot de passe choisi après l'oubli")

    print(json.dumps(validated))


def mailed_link(outbox):
    """The reset link of the latest mail in the outbox (.eml files)."""
    import os
    deadline = time.time() + 10
    while time.time() < deadline:
        for name in sorted(os.listdir(outbox)) if os.path.isdir(outbox) else []:
            with open(os.path.join(outbox, name), "rb") as f:
                message = email.message_from_bytes(f.read(), policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",)).get_content()
            found = re.search(r"(https?://\S+/cas/reinitialisation\?jeton=RST-[0-9a-f]+)", body)
            if found:
                return found.group(1)
        time.sleep(0.2)
    sys.exit("ÉCHEC : aucun courriel « mot de passe oublié » dans la boîte d'envoi")


if __name__ == "__main__":
    main()
