"""The care desk: the web console where staff work each case and managers watch the KPIs."""
