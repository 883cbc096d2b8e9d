# Runs at boot on the Pico W. All logic is in fieldline_node.py, the wiring in
# fieldline_board.py; settings come from settings.json (see settings.example.json).
import fieldline_board

fieldline_board.main()
