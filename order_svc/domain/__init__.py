"""The Order aggregate: a customer's enrolment in a PT class."""
