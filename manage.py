#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if sys.argv[1:2] == ["comms_up"]:
        # comms_up provides the database the settings need, so it runs before Django is set up.
        from comms.devserver.up import main as comms_up

        sys.exit(comms_up(sys.argv[2:]))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
