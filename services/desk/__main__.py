"""python -m services.desk: run the care desk; `hash-password` prints a staff file hash."""

import getpass
import sys

from services.desk.staff import hash_password

if sys.argv[1:2] == ["hash-password"]:
    print(hash_password(getpass.getpass("Mật khẩu: ")))
    sys.exit(0)

from services.desk.app import DeskSettings, create_app
from shared.service import serve

settings = DeskSettings()
serve(create_app(settings), settings)
