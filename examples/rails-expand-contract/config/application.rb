require_relative "boot"

require "rails"
require "active_record/railtie"

Bundler.require(*Rails.groups)

module Bookshop
  class Application < Rails::Application
    config.load_defaults 6.1
    config.eager_load = false
    config.secret_key_base = ENV.fetch("SECRET_KEY_BASE", "not-a-secret-in-this-example")
    config.logger = Logger.new($stdout)
    config.log_level = :warn

    # Post-deployment migrations (the "contract" step) live in db/post_migrate. The release's
    # predeploy runs db:migrate with SKIP_POST_DEPLOYMENT_MIGRATIONS=true, so only db/migrate
    # runs before traffic moves; the postdeploy runs db:migrate again, which now includes
    # db/post_migrate, once every host serves the new code.
    unless ENV["SKIP_POST_DEPLOYMENT_MIGRATIONS"] == "true"
      config.paths["db/migrate"] << "db/post_migrate"
    end
  end
end
