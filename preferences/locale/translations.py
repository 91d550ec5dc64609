"""Source of the es/fr catalogues: `python preferences/locale/translations.py` fills the .po files
(after `makemessages`) and `make messages` compiles them to .mo (committed, so a checkout works
without gettext installed)."""

ES = {
    "By switching on text messages for a marketing category you agree to receive recurring automated marketing texts at your number. Consent is not a condition of purchase. Reply STOP to cancel, HELP for help. Msg & data rates may apply.":
        "Al activar los mensajes de texto para una categoría de marketing, aceptas recibir mensajes de marketing automáticos y periódicos en tu número. El consentimiento no es condición de compra. Responde STOP para cancelar, HELP para obtener ayuda. Pueden aplicarse tarifas de mensajes y datos.",
    "Enter a time like 21:00.": "Introduce una hora como 21:00.",
    "Unknown frequency.": "Frecuencia desconocida.",
    "Choose a time zone from the list.": "Elige una zona horaria de la lista.",
    "Quiet hours need a start different from the end.": "Las horas de silencio necesitan un inicio distinto del final.",
    "Security": "Seguridad", "Legal notices": "Avisos legales", "Receipts": "Recibos", "Bookings": "Reservas",
    "Messages": "Mensajes", "Reviews": "Reseñas", "Payments and payouts": "Pagos y cobros",
    "Promotions and news": "Promociones y novedades", "Account activity": "Actividad de la cuenta",
    "Service updates": "Novedades del servicio", "System": "Sistema", "Marketing": "Marketing",
    "Email": "Correo", "SMS": "SMS", "Push": "Push", "In-app": "En la app",
    "Real time": "Al momento", "Daily digest": "Resumen diario", "Weekly digest": "Resumen semanal", "Never": "Nunca",
    "Notification preferences": "Preferencias de notificación", "Language": "Idioma",
    "Choose what we send you and how. Changes apply to every message not yet sent.":
        "Elige qué te enviamos y cómo. Los cambios se aplican a todos los mensajes aún no enviados.",
    "Your preferences are saved.": "Tus preferencias se han guardado.",
    "You are unsubscribed from all marketing.": "Te has dado de baja de todo el marketing.",
    "Which messages you receive on each channel": "Qué mensajes recibes en cada canal",
    "Category": "Categoría", "How often": "Frecuencia", "always on": "siempre activo",
    "%(catname)s by %(clabel)s": "%(catname)s por %(clabel)s", "Quiet hours": "Horas de silencio",
    "No text messages or push notifications in this window, except security alerts. They arrive when it ends.":
        "Sin SMS ni notificaciones push en este intervalo, salvo alertas de seguridad. Llegarán cuando termine.",
    "Quiet hours on": "Horas de silencio activadas", "From": "Desde", "Until": "Hasta", "Time zone": "Zona horaria",
    "Save preferences": "Guardar preferencias", "Unsubscribe from all marketing": "Darme de baja de todo el marketing",
    "Confirm your subscription": "Confirma tu suscripción", "Subscription confirmed": "Suscripción confirmada",
    "You will now receive %(lname)s.": "A partir de ahora recibirás %(lname)s.",
    "You (or someone using your address) asked to receive %(list_name)s.":
        "Tú (o alguien con tu dirección) ha pedido recibir %(list_name)s.",
    "If you did not ask for this, ignore this message: nothing will be sent to you.":
        "Si no lo pediste, ignora este mensaje: no te enviaremos nada.",
    "Confirm your subscription:": "Confirma tu suscripción:",
    "Reminder: please confirm your subscription to %(list_name)s":
        "Recordatorio: confirma tu suscripción a %(list_name)s",
    "Please confirm your subscription to %(list_name)s": "Confirma tu suscripción a %(list_name)s",
    "Too many requests": "Demasiadas solicitudes", "This link is not valid": "Este enlace no es válido",
    "Please wait a minute and try again.": "Espera un minuto y vuelve a intentarlo.",
    "The link has expired. Use the link in a more recent message.":
        "El enlace ha caducado. Usa el enlace de un mensaje más reciente.",
    "The link is incomplete or was changed. Use the link exactly as it appears in the message.":
        "El enlace está incompleto o se ha modificado. Usa el enlace tal como aparece en el mensaje.",
    "Unsubscribe": "Darse de baja",
    "You will no longer receive optional messages from us. Security and legal notices will still reach you.":
        "Dejarás de recibir nuestros mensajes opcionales. Los avisos de seguridad y legales te seguirán llegando.",
    "You will no longer receive “%(cname)s” e-mails.": "Dejarás de recibir correos de «%(cname)s».",
    "Manage all preferences": "Gestionar todas las preferencias", "You are unsubscribed": "Te has dado de baja",
    "The change applies to every message not yet sent, including ones already scheduled.":
        "El cambio se aplica a todos los mensajes aún no enviados, incluidos los ya programados.",
}

FR = {
    "By switching on text messages for a marketing category you agree to receive recurring automated marketing texts at your number. Consent is not a condition of purchase. Reply STOP to cancel, HELP for help. Msg & data rates may apply.":
        "En activant les SMS pour une catégorie marketing, vous acceptez de recevoir des SMS marketing automatisés et récurrents à votre numéro. Ce consentement n’est pas une condition d’achat. Répondez STOP pour arrêter, HELP pour de l’aide. Des frais de messages et de données peuvent s’appliquer.",
    "Enter a time like 21:00.": "Saisissez une heure comme 21:00.",
    "Unknown frequency.": "Fréquence inconnue.",
    "Choose a time zone from the list.": "Choisissez un fuseau horaire dans la liste.",
    "Quiet hours need a start different from the end.": "Les heures calmes doivent commencer et finir à des heures différentes.",
    "Security": "Sécurité", "Legal notices": "Mentions légales", "Receipts": "Reçus", "Bookings": "Réservations",
    "Messages": "Messages", "Reviews": "Avis", "Payments and payouts": "Paiements et versements",
    "Promotions and news": "Promotions et actualités", "Account activity": "Activité du compte",
    "Service updates": "Informations de service", "System": "Système", "Marketing": "Marketing",
    "Email": "E-mail", "SMS": "SMS", "Push": "Push", "In-app": "Dans l’app",
    "Real time": "En temps réel", "Daily digest": "Résumé quotidien", "Weekly digest": "Résumé hebdomadaire",
    "Never": "Jamais",
    "Notification preferences": "Préférences de notification", "Language": "Langue",
    "Choose what we send you and how. Changes apply to every message not yet sent.":
        "Choisissez ce que nous vous envoyons et comment. Les changements s’appliquent à tous les messages pas encore envoyés.",
    "Your preferences are saved.": "Vos préférences sont enregistrées.",
    "You are unsubscribed from all marketing.": "Vous êtes désinscrit de tout le marketing.",
    "Which messages you receive on each channel": "Les messages que vous recevez sur chaque canal",
    "Category": "Catégorie", "How often": "Fréquence", "always on": "toujours actif",
    "%(catname)s by %(clabel)s": "%(catname)s par %(clabel)s", "Quiet hours": "Heures calmes",
    "No text messages or push notifications in this window, except security alerts. They arrive when it ends.":
        "Aucun SMS ni notification push pendant cette plage, sauf les alertes de sécurité. Ils arrivent à la fin de la plage.",
    "Quiet hours on": "Heures calmes activées", "From": "De", "Until": "À", "Time zone": "Fuseau horaire",
    "Save preferences": "Enregistrer les préférences", "Unsubscribe from all marketing": "Me désinscrire de tout le marketing",
    "Confirm your subscription": "Confirmez votre inscription", "Subscription confirmed": "Inscription confirmée",
    "You will now receive %(lname)s.": "Vous recevrez désormais %(lname)s.",
    "You (or someone using your address) asked to receive %(list_name)s.":
        "Vous (ou quelqu’un utilisant votre adresse) avez demandé à recevoir %(list_name)s.",
    "If you did not ask for this, ignore this message: nothing will be sent to you.":
        "Si vous n’avez rien demandé, ignorez ce message : rien ne vous sera envoyé.",
    "Confirm your subscription:": "Confirmez votre inscription :",
    "Reminder: please confirm your subscription to %(list_name)s":
        "Rappel : confirmez votre inscription à %(list_name)s",
    "Please confirm your subscription to %(list_name)s": "Confirmez votre inscription à %(list_name)s",
    "Too many requests": "Trop de requêtes", "This link is not valid": "Ce lien n’est pas valide",
    "Please wait a minute and try again.": "Patientez une minute puis réessayez.",
    "The link has expired. Use the link in a more recent message.":
        "Le lien a expiré. Utilisez le lien d’un message plus récent.",
    "The link is incomplete or was changed. Use the link exactly as it appears in the message.":
        "Le lien est incomplet ou a été modifié. Utilisez le lien tel qu’il apparaît dans le message.",
    "Unsubscribe": "Se désinscrire",
    "You will no longer receive optional messages from us. Security and legal notices will still reach you.":
        "Vous ne recevrez plus nos messages facultatifs. Les alertes de sécurité et mentions légales vous parviendront toujours.",
    "You will no longer receive “%(cname)s” e-mails.": "Vous ne recevrez plus les e-mails « %(cname)s ».",
    "Manage all preferences": "Gérer toutes les préférences", "You are unsubscribed": "Vous êtes désinscrit",
    "The change applies to every message not yet sent, including ones already scheduled.":
        "Le changement s’applique à tous les messages pas encore envoyés, y compris ceux déjà programmés.",
}


def fill() -> None:
    from pathlib import Path

    from babel.messages.pofile import read_po, write_po

    here = Path(__file__).resolve().parent
    for lang, table in (("es", ES), ("fr", FR)):
        path = here / lang / "LC_MESSAGES" / "django.po"
        with path.open("rb") as f:
            catalog = read_po(f, locale=lang)
        missing = []
        for message in catalog:
            if message.id:
                if message.id in table:
                    message.string = table[message.id]
                    message.flags.discard("fuzzy")
                else:
                    missing.append(message.id)
        with path.open("wb") as f:
            write_po(f, catalog, width=100)
        if missing:
            raise SystemExit(f"{lang}: no translation for {missing}")


if __name__ == "__main__":
    fill()
