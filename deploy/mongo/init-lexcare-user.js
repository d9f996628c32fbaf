// Runs once, when the mongo container starts on an empty data volume
// (/docker-entrypoint-initdb.d). Creates the services' own user: readWrite on the six
// databases lexcare_<service> (prefix LEXCARE_MONGO_DB_PREFIX), nothing else.
const prefix = process.env.LEXCARE_MONGO_DB_PREFIX || "lexcare";
const services = ["intake", "routing", "followup", "survey", "metrics", "desk"];
db.getSiblingDB("admin").createUser({
  user: process.env.MONGO_APP_USERNAME || "lexcare",
  pwd: process.env.MONGO_APP_PASSWORD,
  roles: services.map((name) => ({ role: "readWrite", db: `${prefix}_${name}` })),
});
print(`lexcare: user ${process.env.MONGO_APP_USERNAME || "lexcare"} created for ${prefix}_*`);
