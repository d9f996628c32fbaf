"""python -m services.intake: run the intake service; `... train`: retrain its classifier."""

import sys

from services.intake.app import IntakeSettings, create_app
from shared.service import serve

settings = IntakeSettings()
if sys.argv[1:2] == ["train"]:
    from services.intake.training import main

    sys.exit(main(sys.argv[2:], settings))
serve(create_app(settings), settings)
